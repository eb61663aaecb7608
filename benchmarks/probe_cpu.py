"""CPU per check of one probe worker, and optionally where it goes (py-spy).

Not a harness scenario: a tool for the probe worker alone. It starts the target farm
and one probe worker (Celery threads pool, as in the Procfile), publishes ``--rate``
slots a second for ``--seconds`` through the dispatcher's own publisher (ETA batches,
one second each), and reads the CPU the worker and the farm used per check from
/proc. No Beat, no dispatch claim, no ingest: what is measured is the worker's own
path (Celery, the monitor query, the checks, the Redis push, the live state).

    python -m benchmarks.probe_cpu --rate 300 --seconds 30 [--profile /tmp/probe.txt]
    python -m benchmarks.probe_cpu --rate 100 --seconds 30 --keyword-1mib

By default the monitors are status-only checks of ``/t/<n>``. ``--keyword-1mib`` makes
them keyword checks of ``/k/<n>``: the same behaviours, but each 200 is a 1 MiB page
whose keyword is its last words, so every healthy check reads, decodes and searches
the whole mebibyte (the default cap, ``Monitor.max_body_kib``).

It uses the environment's DATABASE_URL, REDIS_URL and CELERY_BROKER_URL as they are
(a developer's own ones; it creates monitors owned by ``bench-probe-cpu`` and deletes
the results it pushed). ``--profile`` needs ``py-spy`` on PATH (``pip install
py-spy``; a profiling tool, not a dependency) and prints the time by component.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks import runtime
from benchmarks.farm import PAGE_KEYWORD, Farm, farm_running
from benchmarks.pipeline import _django, _wait_for_workers, cpu_sample

OWNER = "bench-probe-cpu"
TIMEOUT_S = 5
WARMUP_S = 5

# Components, inclusive: a sample goes to the first one (in this order) that has a
# frame anywhere in its stack, so the ORM under the live-state update counts as the
# live-state update and the event loop gets only what no check code is on top of.
COMPONENTS = (
    ("result encoding (telemetry/records.py)", ("telemetry/records.py",)),
    ("live state (monitors/state.py, alerting)", ("monitors/state.py", "alerting/services/")),
    ("Redis push (telemetry/buffer/, redis)", ("telemetry/buffer/", "telemetry/stats.py")),
    ("monitor query + specs (ORM)", ("monitors/probes/spec.py", "in_bulk")),
    ("aiohttp client", ("aiohttp/", "yarl/", "multidict/")),
    ("our engine / guard", ("monitors/probes/",)),
    ("asyncio / uvloop event loop", ("asyncio/", "uvloop/")),
    ("Celery / kombu / amqp", ("celery/", "kombu/", "amqp/", "vine/", "billiard/")),
    ("Django ORM / MySQLdb", ("django/", "MySQLdb/")),
)


def run(
    *, rate: int, seconds: int, threads: int, profile: Path | None, keyword_1mib: bool = False
) -> dict[str, Any]:
    _django()
    with farm_running(processes=1) as (farm, farm_pids):
        monitors = _create_monitors(farm, rate * 10, keyword_1mib=keyword_1mib)
        worker = runtime.spawn(
            [sys.executable, "-m", "celery", "-A", "sentinel", "worker", "--queues", "probes",
             "--pool", "threads", "--concurrency", str(threads), "--without-gossip",
             "--without-mingle", "--hostname", f"probe-cpu-{os.getpid()}@%h",
             "--loglevel", "WARNING"],
            env=runtime.probe_worker_environment(),
            quiet=False,
        )  # fmt: skip
        _purge_probes()
        _wait_for_workers({"probe worker": worker})
        start = time.time() + 1
        spy = None
        try:
            window = (start + WARMUP_S, start + WARMUP_S + seconds)
            spy = _publish_and_measure(monitors, rate, start, window, worker, farm_pids, profile)
        finally:
            runtime.stop(worker)
        report = {
            "checks": "keyword, 1 MiB page" if keyword_1mib else "status only",
            **_results(window, spy["cpu"], rate),
        }
        _delete_results()
        if profile is not None:
            report["components"] = components(profile)
        return report


def _create_monitors(
    farm: Farm, count: int, *, keyword_1mib: bool
) -> list[tuple[int, dict[str, Any]]]:
    """The monitors made, as (id, spec): the probe worker reads no database."""
    from django.contrib.auth.models import User

    from monitors.models import Monitor
    from monitors.slots import SPEC_COLUMNS, spec_encode

    owner, _ = User.objects.get_or_create(username=OWNER)
    Monitor.objects.filter(owner=owner).delete()
    Monitor.objects.bulk_create(
        (
            Monitor(
                owner=owner,
                project_id=owner.personal_project.pk,
                name=f"probe-cpu {n}",
                url=farm.page_url(n) if keyword_1mib else farm.url(n),
                keyword=PAGE_KEYWORD if keyword_1mib else "",
                timeout_seconds=TIMEOUT_S,
            )
            for n in range(count)
        ),
        batch_size=2000,
    )
    rows = Monitor.objects.filter(owner=owner).values_list("pk", *SPEC_COLUMNS)
    return [(pk, spec_encode(values)) for pk, *values in rows]


def _purge_probes() -> None:
    from sentinel.celery import app

    with app.connection_for_write() as conn:
        queue = app.amqp.queues["probes"].bind(conn.default_channel)
        queue.declare()
        queue.purge()


def _publish_and_measure(
    monitors: list[tuple[int, dict[str, Any]]],
    rate: int,
    start: float,
    window: tuple[float, float],
    worker: Any,
    farm_pids: list[int],
    profile: Path | None,
) -> dict[str, Any]:
    """Publish each second's slots a second ahead; sample CPU around the window."""
    from django.conf import settings

    from monitors.dispatch import Slot, probe_batches_publisher

    publish = probe_batches_publisher(batch_size=settings.SENTINEL_PROBE_BATCH_SIZE)
    group = {"probe worker": worker}
    second, n, before, spy = int(start), 0, None, None
    while second < window[1]:
        slots = []
        for i in range(rate):
            pk, spec = monitors[n % len(monitors)]
            slots.append(Slot(second * 1000 + i * 1000 // rate, pk, spec))
            n += 1
        publish(slots)
        while time.time() < second:  # one second ahead, like the dispatcher's lead
            time.sleep(0.05)
        if before is None and time.time() >= window[0] - 1:
            _sleep_until(window[0])
            before = cpu_sample(group, farm_pids)
            if profile is not None:
                spy = _py_spy(worker.pid, window[1] - window[0], profile)
        second += 1
    _sleep_until(window[1])
    after = cpu_sample(group, farm_pids)
    if spy is not None:
        spy.wait(timeout=60)
    time.sleep(TIMEOUT_S + 2)  # the window's last checks finish and are pushed
    assert before is not None
    return {"cpu": {name: after[name] - before.get(name, 0.0) for name in after}}


def _sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.time()))


def _py_spy(pid: int, seconds: float, output: Path) -> subprocess.Popen[bytes]:
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    return subprocess.Popen(
        [spy, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "200",
         "--gil", "--format", "raw", "--output", str(output), "--nonblocking"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip


def _results(window: tuple[float, float], cpu: dict[str, float], rate: int) -> dict[str, Any]:
    from telemetry.buffer import STREAM_KEY, buffer_client
    from telemetry.records import payload_decode

    lo, hi = window[0] * 1000, window[1] * 1000
    lags, failures, done = [], Counter[str](), 0
    entries: Any = buffer_client().xrange(STREAM_KEY)
    # Wire rows: monitor, scheduled, started, duration, ok, status, failure, ...
    for row in (row for _id, fields in entries for row in payload_decode(fields[b"r"])):
        if lo <= row[1] < hi:
            done += 1
            lags.append((row[2] - row[1]) / 1000)
            failures[row[6] or "ok"] += 1
    seconds = window[1] - window[0]
    return {
        "rate_published_per_s": rate,
        "checks_in_window": done,
        "checks_per_second": round(done / seconds, 1),
        "lag_p50_s": round(runtime.percentile(lags, 0.5), 3),
        "lag_p99_s": round(runtime.percentile(lags, 0.99), 3),
        "outcomes": dict(failures),
        "cpu_ms_per_check": {
            name: round(used * 1000 / max(done, 1), 3) for name, used in sorted(cpu.items())
        },
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def _delete_results() -> None:
    from telemetry.buffer import STREAM_KEY, buffer_client

    buffer_client().delete(STREAM_KEY)


def components(raw: Path) -> dict[str, float]:
    """Share of the worker's sampled CPU per component, from py-spy's raw output."""
    totals: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        frames = stack.split(";")
        totals[_component(frames)] += int(count)
    whole = sum(totals.values()) or 1
    return {name: round(100 * n / whole, 1) for name, n in totals.most_common()}


def _component(frames: list[str]) -> str:
    for name, needles in COMPONENTS:
        if any(needle in frame for frame in frames for needle in needles):
            return name
    return "other (uvloop's own C code has no Python frame; stdlib)"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=300, help="checks a second")
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--threads", type=int, default=48)
    parser.add_argument("--profile", type=Path)
    parser.add_argument(
        "--keyword-1mib",
        action="store_true",
        help="keyword checks of a 1 MiB page whose keyword is at the end",
    )
    args = parser.parse_args(argv)
    try:
        report = run(
            rate=args.rate,
            seconds=args.seconds,
            threads=args.threads,
            profile=args.profile,
            keyword_1mib=args.keyword_1mib,
        )
    finally:
        runtime.stop_all()
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
