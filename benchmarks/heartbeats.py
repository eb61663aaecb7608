"""Scenario ``heartbeats``: pings through the web tier as deployed, while an HTTP fleet
runs, and missed heartbeats found by the per-minute pass.

The web tier is gunicorn serving ``sentinel.wsgi:application`` with the Dockerfile's
worker options (two threaded workers; ``/ping/`` is answered by ``monitors.pingapp`` in
front of Django). ``wrk``
(Debian's, installed by ``bin/ensure-system-packages``) sends GET pings with a Lua
script that walks the ping URLs of the running heartbeats, for the whole window. Beside
it run the pipeline scenario's processes for an HTTP fleet (Beat, the dispatch worker,
probe workers, ``manage.py ingest``) against the target farm.

N heartbeats (10,000) with a 60 s period and 60 s grace are pinged once before the
window; 1 % of them are then never pinged again ("stopped"). Figures:

- ``heartbeats.pings_per_second``, ``heartbeats.ping_p99_ms`` (wrk's; every
  connection open for the window, so the p99 includes the queueing at that
  concurrency), ``heartbeats.ping_errors`` (non-200 answers and socket errors);
- ``heartbeats.pings_lost``: pings answered 200 without a row in ``heartbeat_ping``
  once the buffer has drained;
- ``heartbeats.stopped_not_down``, ``heartbeats.down_after_deadline_max_s`` (from a
  stopped heartbeat's deadline, its last ping + period + grace, to its status being
  down in MySQL, polled every second) and ``heartbeats.running_down`` (running
  heartbeats that went down).

Run alone: ``python -m benchmarks.heartbeats [--quick]`` (the environment's DATABASE_URL,
REDIS_URL and CELERY_BROKER_URL as they are).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from benchmarks import pipeline, runtime
from benchmarks.farm import farm_running

OWNER = "bench-heartbeats"
PERIOD_S = 60
GRACE_S = 60
STOPPED_SHARE = 0.01
# wrk: 2 threads (2 cores), this many connections in all: the web tier's 16 threads.
CONNECTIONS = 16
# The web tier's gunicorn options, as the Dockerfile runs it (without its access log).
WEB_WORKERS = 2
WEB_ARGS = ("--workers", str(WEB_WORKERS), "--worker-class", "gthread", "--threads", "8")

# Walk the URLs, each thread from its own offset; count what came back.
LUA = """
local paths = {}
for line in io.lines(os.getenv("BENCH_PING_PATHS")) do paths[#paths + 1] = line end
local counter = 0
local threads = {}
function setup(thread)
  thread:set("offset", #threads * 7919)
  table.insert(threads, thread)
end
function init(args)
  counter = tonumber(wrk.thread:get("offset")) or 0
  ok = 0
end
function request()
  counter = counter + 1
  return wrk.format("GET", paths[(counter % #paths) + 1])
end
function response(status, headers, body)
  if status == 200 then ok = ok + 1 end
end
function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do total = total + thread:get("ok") end
  io.write(string.format("BENCH ok=%d p50_us=%d p99_us=%d\\n", total,
    latency:percentile(50), latency:percentile(99)))
end
"""


def run(*, quick: bool, report: dict[str, object]) -> None:
    heartbeats = int(os.environ.get("BENCH_HEARTBEATS", 10_000))
    fleet = int(os.environ.get("BENCH_HEARTBEATS_HTTP_MONITORS", 1_000 if quick else 10_000))
    # A stopped heartbeat is due at 60 s and down by 120 s + the pass: the window must
    # hold that and a pass after it.
    window_s = int(os.environ.get("BENCH_HEARTBEATS_SECONDS", 200 if quick else 240))
    pipeline._django()
    with farm_running(processes=1) as (farm, _farm_pids):
        runtime.stage(f"heartbeats: {heartbeats} heartbeats, {fleet} HTTP monitors")
        pipeline._create_monitors(farm, fleet)
        running, stopped = _create_heartbeats(heartbeats)
        pipeline._purge_queues()
        processes = pipeline._start_pipeline(1, 16 if quick else 64)
        processes["ingest"] = runtime.spawn(runtime.manage_args("ingest"), env=dict(os.environ))
        pipeline._wait_for_workers({k: v for k, v in processes.items() if k != "ingest"})
        processes["beat"] = pipeline._start_beat()
        pipeline._kick_dispatch()
        port, web = _start_web()
        report.update(_measure(port, running, stopped, window_s=window_s))
        runtime.stop(web)
        for child in processes.values():
            runtime.stop(child)
    report["heartbeats.heartbeats"] = heartbeats
    report["heartbeats.http_monitors"] = fleet
    report["heartbeats.web_workers"] = WEB_WORKERS
    report["heartbeats.connections"] = CONNECTIONS


def _create_heartbeats(count: int) -> tuple[list[str], dict[int, str]]:
    """Fresh heartbeats, their routes in Redis, each pinged once through the buffer
    (set-up, not measured); returns the running ones' ping paths and the stopped
    ones' paths by id."""
    from django.contrib.auth.models import User

    from monitors.heartbeats import ROUTES_KEY, heartbeat_routes_rebuild
    from monitors.models import NEVER, Monitor
    from monitors.pingapp import ping_handle
    from telemetry.buffer import buffer_client

    owner, _ = User.objects.get_or_create(username=OWNER)
    Monitor.objects.filter(owner=owner).delete()
    Monitor.objects.bulk_create(
        (
            Monitor(
                owner=owner, project_id=owner.personal_project.pk,
                name=f"heartbeat {n}", kind="heartbeat", url="",
                heartbeat_uuid=uuid.uuid4(), heartbeat_period_seconds=PERIOD_S,
                heartbeat_grace_seconds=GRACE_S, next_check_at=NEVER,
                confirm_failures=1, recover_successes=1,
            )
            for n in range(count)
        ),
        batch_size=2000,
    )  # fmt: skip
    buffer_client().delete(ROUTES_KEY)
    heartbeat_routes_rebuild()
    rows = list(
        Monitor.objects.filter(owner=owner).order_by("pk").values_list("pk", "heartbeat_uuid")
    )
    paths = {pk: f"/ping/{uuid_}" for pk, uuid_ in rows}
    for path in paths.values():
        status = ping_handle({"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": ""})
        assert status == 200, f"set-up ping of {path}: {status}"
    every = max(1, round(1 / STOPPED_SHARE))
    stopped = {pk: path for n, (pk, path) in enumerate(paths.items()) if n % every == 0}
    running = [path for pk, path in paths.items() if pk not in stopped]
    runtime.stage(f"heartbeats: {len(paths)} pinged once; {len(stopped)} stop now")
    return running, stopped


def _start_web() -> tuple[int, Any]:
    from benchmarks.farm import free_port

    port = free_port()
    web = runtime.spawn(
        [sys.executable, "-m", "gunicorn", "sentinel.wsgi:application",
         "--bind", f"127.0.0.1:{port}", *WEB_ARGS],
        env=dict(os.environ),
    )  # fmt: skip
    _wait_for_port(port)
    return port, web


def _wait_for_port(port: int, timeout: float = 60) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"the web tier did not listen on {port} within {timeout:.0f} s")


def _measure(
    port: int, running: list[str], stopped: dict[int, str], *, window_s: int
) -> dict[str, object]:
    from django.db import connection

    from monitors.models import Monitor

    _drain()  # the set-up pings stored first: the window's are counted alone
    owner_rows_before = _ping_rows()
    started = time.time()
    with tempfile.TemporaryDirectory() as scratch:
        script, paths = Path(scratch) / "pings.lua", Path(scratch) / "paths.txt"
        script.write_text(LUA)
        paths.write_text("\n".join(running) + "\n")
        wrk = subprocess.Popen(
            ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{window_s}s", "--latency", "-s", str(script),
             f"http://127.0.0.1:{port}"],
            stdout=subprocess.PIPE, text=True, env={**os.environ, "BENCH_PING_PATHS": str(paths)},
        )  # fmt: skip
        down_at = _watch_down(list(stopped), until=started + window_s, wrk=wrk)
        output, _ = wrk.communicate(timeout=60)
    figures = _wrk_figures(output, seconds=window_s)
    pipeline_drained = _drain()
    stored = _ping_rows() - owner_rows_before
    deadlines = _deadlines(stopped)
    late = [down_at[pk] - deadlines[pk] for pk in stopped if pk in down_at and pk in deadlines]
    connection.close()
    running_down = (
        Monitor.objects.filter(owner__username=OWNER, status="down")
        .exclude(pk__in=list(stopped))
        .count()
    )
    return {
        "heartbeats.pings_per_second": figures["rate"],
        "heartbeats.ping_p50_ms": figures["p50_ms"],
        "heartbeats.ping_p99_ms": figures["p99_ms"],
        "heartbeats.ping_errors": figures["requests"] - figures["ok"],
        # Pings answered after wrk stopped counting are stored but not in "ok": never
        # a loss, hence the floor.
        "heartbeats.pings_lost": max(figures["ok"] - stored, 0) if pipeline_drained else None,
        "heartbeats.stopped_not_down": len(stopped) - len(down_at),
        "heartbeats.down_after_deadline_max_s": round(max(late), 1) if late else None,
        "heartbeats.running_down": running_down,
        "heartbeats.window_s": window_s,
    }


def _watch_down(ids: list[int], *, until: float, wrk: Any) -> dict[int, float]:
    """When each of ``ids`` was first seen down in MySQL (epoch s), polled each second."""
    from django.db import connection

    from monitors.models import Monitor

    seen: dict[int, float] = {}
    while time.time() < until + 5 and wrk.poll() is None:
        down = Monitor.objects.filter(pk__in=ids, status="down").values_list("pk", flat=True)
        now = time.time()
        for pk in down:
            seen.setdefault(pk, now)
        connection.close()  # a fresh snapshot each poll
        time.sleep(1)
    runtime.stage(f"heartbeats: {len(seen)} of {len(ids)} stopped heartbeats down")
    return seen


def _deadlines(stopped: dict[int, str]) -> dict[int, float]:
    """Each stopped heartbeat's deadline (epoch s): its last ping + period + grace."""
    from monitors.models import Monitor

    rows = Monitor.objects.filter(pk__in=list(stopped)).values_list("pk", "heartbeat_last_ping_at")
    return {pk: at.timestamp() + PERIOD_S + GRACE_S for pk, at in rows if at is not None}


def _wrk_figures(output: str, *, seconds: int) -> dict[str, float]:
    requests = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    line = re.search(r"BENCH ok=(\d+) p50_us=(\d+) p99_us=(\d+)", output)
    assert line, output
    ok, p50, p99 = (int(v) for v in line.groups())
    runtime.stage(f"heartbeats: wrk: {requests} requests, {ok} answered 200")
    return {
        "requests": requests,
        "ok": ok,
        "non_2xx": int(errors.group(1)) if errors else 0,
        "rate": round(requests / seconds),
        "p50_ms": round(p50 / 1000, 1),
        "p99_ms": round(p99 / 1000, 1),
    }


def _drain(timeout: float = 120) -> bool:
    from telemetry.buffer import STREAM_KEY, buffer_client

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if buffer_client().xlen(STREAM_KEY) == 0:
            return True
        time.sleep(0.5)
    return False


def _ping_rows() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*) FROM heartbeat_ping p JOIN monitors_monitor m ON m.id = p.monitor_id "
            "JOIN auth_user u ON u.id = m.owner_id WHERE u.username = %s",
            [OWNER],
        )
        return int(cursor.fetchone()[0])


def main(argv: list[str]) -> int:
    import json

    report: dict[str, object] = {}
    try:
        run(quick="--quick" in argv, report=report)
    finally:
        runtime.stop_all()
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
