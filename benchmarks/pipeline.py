"""Scenario ``pipeline``: N monitors at a 60 s interval through the real path.

Celery Beat (DatabaseScheduler, the migration-installed schedule) -> dispatch task ->
RabbitMQ -> probe workers (threads pool, aiohttp) -> the target farm on loopback ->
Redis stream. The scenario reads the results back from the stream as they arrive
(it does not need ingest) and compares them with what should have happened: every
phase-aligned slot of every monitor inside the measured window checked exactly once,
on time, with the outcome the farm's path is known to produce.

Run alone: ``python -m benchmarks.pipeline [--quick] [--monitors N]`` (uses the
environment's DATABASE_URL, REDIS_URL and CELERY_BROKER_URL as they are).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import runtime
from benchmarks.farm import Farm, behaviour, farm_running

INTERVAL_S = 60
TIMEOUT_S = 5
OWNER = "bench-pipeline"
WARMUP_S = 10  # the window opens this long after the first dispatch
SETTLE_S = TIMEOUT_S + 5  # after the window: let the last checks finish and land


@dataclass(frozen=True, slots=True)
class Seen:
    monitor_id: int
    scheduled_ms: int
    started_ms: int
    ok: bool
    failure: str | None


def run(*, quick: bool, report: dict[str, object]) -> None:
    monitors = int(os.environ.get("BENCH_PIPELINE_MONITORS", 2_000 if quick else 10_000))
    window_s = int(os.environ.get("BENCH_PIPELINE_SECONDS", 40 if quick else 180))
    probe_processes = int(os.environ.get("BENCH_PROBE_PROCESSES", 2))
    probe_threads = int(os.environ.get("BENCH_PROBE_THREADS", 16 if quick else 48))
    _django()
    runtime.stage(
        f"pipeline: {monitors} monitors at {INTERVAL_S} s, window {window_s} s, "
        f"{probe_processes} probe workers x {probe_threads} threads"
    )
    with farm_running(processes=1) as (farm, farm_pids):
        ids = _create_monitors(farm, monitors)
        _purge_queues()
        processes = _start_pipeline(probe_processes, probe_threads)
        reader = StreamReader(set(ids))
        reader.start()
        _wait_for_workers(processes)
        # Beat only now: a dispatch before the workers listen would measure their
        # start-up (its batches wait, then arrive at once), not the pipeline.
        processes["beat"] = _start_beat()
        kick_ms = _now_ms()
        _kick_dispatch()
        window = (kick_ms + WARMUP_S * 1000, kick_ms + (WARMUP_S + window_s) * 1000)
        runtime.stage("pipeline: first dispatch sent; Beat sends the next ones every minute")
        _sleep_until(window[0] / 1000, progress=reader)
        cpu_before = cpu_sample(processes, farm_pids)
        _sleep_until(window[1] / 1000, progress=reader)
        cpu_after = cpu_sample(processes, farm_pids)
        time.sleep(SETTLE_S)
        reader.stop()
        for child in processes.values():
            runtime.stop(child)
        _disable_monitors()
        if dump := os.environ.get("BENCH_PIPELINE_DUMP"):
            # For digging into a bad figure: one line per result seen.
            Path(dump).write_text(
                "".join(
                    f"{x.monitor_id},{x.scheduled_ms},{x.started_ms},{x.ok},{x.failure}\n"
                    for x in reader.seen
                )
            )
        _fill_report(report, ids=ids, seen=reader.seen, window=window, monitors=monitors)
        report["pipeline.cpu_percent_of_a_core"] = cpu_percent(
            cpu_before, cpu_after, seconds=window_s
        )
        report["pipeline.probe_workers"] = f"{probe_processes} x {probe_threads} threads"
        report["pipeline.load_average_1m"] = round(os.getloadavg()[0], 2)
        runtime.stage("pipeline: baseline, one process with requests, same farm, same time")
        report["baseline.naive_loop_checks_per_second"] = naive_loop(
            farm, monitors=monitors, seconds=window_s
        )


# --- setup ----------------------------------------------------------------------


def _django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sentinel.settings")
    os.environ.setdefault("SENTINEL_ALLOWED_NETWORKS", "127.0.0.0/8,::1/128")
    import django

    django.setup()


def _create_monitors(farm: Farm, count: int) -> list[int]:
    """Fresh monitors for this farm (its ports change per run), all due at once."""
    from django.contrib.auth.models import User
    from django.utils import timezone

    from monitors.models import Monitor

    owner, _ = User.objects.get_or_create(username=OWNER)
    Monitor.objects.filter(owner=owner).delete()
    # Overdue by minutes: the first dispatch catches each up once, at its phase.
    overdue = timezone.now() - dt.timedelta(minutes=5)
    started = time.monotonic()
    Monitor.objects.bulk_create(
        (
            Monitor(
                owner=owner,
                name=f"pipeline {n}",
                url=farm.url(n),
                interval_seconds=INTERVAL_S,
                timeout_seconds=TIMEOUT_S,
                next_check_at=overdue,
            )
            for n in range(count)
        ),
        batch_size=2000,
    )
    ids = list(Monitor.objects.filter(owner=owner).order_by("pk").values_list("pk", flat=True))
    runtime.stage(f"pipeline: {len(ids)} monitors created in {time.monotonic() - started:.1f} s")
    return ids


def _path_of(monitor_ids: list[int]) -> dict[int, int]:
    """Monitor id -> farm path number (the n in its name)."""
    from monitors.models import Monitor

    rows = Monitor.objects.filter(pk__in=monitor_ids).values_list("pk", "name")
    return {pk: int(name.rsplit(" ", 1)[1]) for pk, name in rows.iterator(chunk_size=5000)}


def _disable_monitors() -> None:
    from monitors.models import Monitor

    Monitor.objects.filter(owner__username=OWNER).update(enabled=False)


def _purge_queues() -> None:
    """Stale ETA batches from an earlier run must not be counted as this run's."""
    from sentinel.celery import app

    with app.connection_for_write() as conn:
        for name in ("dispatch", "probes"):
            app.amqp.queues[name].bind(conn.default_channel).declare()
            app.amqp.queues[name].bind(conn.default_channel).purge()


def _start_pipeline(probe_processes: int, probe_threads: int) -> dict[str, Any]:
    celery = [sys.executable, "-m", "celery", "-A", "sentinel"]
    env = dict(os.environ)
    probe_env = {**env, "DATABASE_CONN_MAX_AGE": "0"}  # threads: no idle connection each
    processes = {
        "dispatch worker": runtime.spawn(
            [
                *celery,
                "worker",
                "--queues",
                "dispatch",
                "--pool",
                "solo",
                "--hostname",
                f"bench-dispatch-{os.getpid()}@%h",
                "--loglevel",
                "WARNING",
            ],
            env=env,
        ),
    }
    for n in range(probe_processes):
        processes[f"probe worker {n + 1}"] = runtime.spawn(
            [*celery, "worker", "--queues", "probes", "--pool", "threads",
             "--concurrency", str(probe_threads), "--without-gossip", "--without-mingle",
             "--hostname", f"bench-probes-{n}-{os.getpid()}@%h", "--loglevel", "WARNING"],
            env=probe_env,
            quiet=False,
        )  # fmt: skip
    return processes


def _start_beat() -> Any:
    return runtime.spawn(
        [sys.executable, "-m", "celery", "-A", "sentinel", "beat",
         "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler",
         "--schedule", "/dev/null", "--loglevel", "WARNING"],
        env=dict(os.environ),
    )  # fmt: skip


def _wait_for_workers(processes: dict[str, Any], timeout: float = 240) -> None:
    """Workers start slowly on a busy machine; dispatching before they listen
    would measure their start-up, not the pipeline."""
    from sentinel.celery import app

    count = len(processes)
    deadline = time.monotonic() + timeout
    replies: list[Any] = []
    while time.monotonic() < deadline:
        dead = [name for name, child in processes.items() if child.poll() is not None]
        if dead:
            raise RuntimeError(f"{', '.join(dead)} exited during start-up")
        replies = app.control.ping(timeout=2.0) or []
        if len(replies) >= count:
            runtime.stage(f"pipeline: {len(replies)} workers answer")
            return
    raise RuntimeError(f"only {len(replies)} of {count} workers answered within {timeout:.0f} s")


def _kick_dispatch() -> None:
    from sentinel.celery import app

    app.send_task("monitors.dispatch.due", expires=50)


def _now_ms() -> int:
    return round(time.time() * 1000)


def _sleep_until(moment: float, *, progress: StreamReader) -> None:
    while (left := moment - time.time()) > 0:
        time.sleep(min(left, 15))
        runtime.stage(f"pipeline: {len(progress.seen)} results so far")


# --- reading the results back ---------------------------------------------------


class StreamReader(threading.Thread):
    """Follows the result stream from now on, keeping this run's monitors' results."""

    def __init__(self, monitor_ids: set[int]) -> None:
        super().__init__(name="stream-reader", daemon=True)
        self.monitor_ids = monitor_ids
        self.seen: list[Seen] = []
        self._stopping = threading.Event()

    def run(self) -> None:
        import json

        from telemetry.buffer import STREAM_KEY, buffer_client

        client = buffer_client()
        last = "$"
        while not self._stopping.is_set():
            answer: Any = client.xread({STREAM_KEY: last}, count=5000, block=500)
            for _stream, entries in answer or []:
                for entry_id, fields in entries:
                    last = entry_id
                    data = json.loads(fields[b"r"])
                    if data["monitor_id"] in self.monitor_ids:
                        self.seen.append(
                            Seen(
                                data["monitor_id"],
                                data["scheduled_at"],
                                data["started_at"],
                                data["ok"],
                                data["failure"],
                            )
                        )

    def stop(self) -> None:
        self._stopping.set()
        self.join(10)


# --- figures --------------------------------------------------------------------


def _fill_report(
    report: dict[str, object],
    *,
    ids: list[int],
    seen: list[Seen],
    window: tuple[int, int],
    monitors: int,
) -> None:
    from monitors.dispatch import monitor_phase_ms

    start, end = window
    period = INTERVAL_S * 1000
    expected: set[tuple[int, int]] = set()
    for pk in ids:
        phase = monitor_phase_ms(monitor_id=pk, interval_seconds=INTERVAL_S)
        slot = start + (phase - start) % period
        while slot < end:
            expected.add((pk, slot))
            slot += period
    in_window = [s for s in seen if start <= s.scheduled_ms < end]
    counts = Counter((s.monitor_id, s.scheduled_ms) for s in in_window)
    lags = [(s.started_ms - s.scheduled_ms) / 1000 for s in in_window]
    paths = _path_of(ids)
    wrong = sum(1 for s in in_window if not _outcome_right(s, paths[s.monitor_id]))
    seconds = (end - start) / 1000
    per_second = Counter(s.started_ms // 1000 for s in in_window if start <= s.started_ms < end)
    report.update(
        {
            "pipeline.monitors": monitors,
            "pipeline.interval_s": INTERVAL_S,
            "pipeline.window_s": seconds,
            "pipeline.expected_checks": len(expected),
            "pipeline.checks": len(in_window),
            "pipeline.checks_per_second": round(len(in_window) / seconds, 1),
            "pipeline.schedule_lag_p50_s": round(runtime.percentile(lags, 0.50), 3),
            "pipeline.schedule_lag_p99_s": round(runtime.percentile(lags, 0.99), 3),
            "pipeline.schedule_lag_max_s": round(max(lags, default=float("nan")), 3),
            "pipeline.skipped_checks": len(expected - counts.keys()),
            "pipeline.duplicate_checks": sum(n - 1 for n in counts.values() if n > 1),
            "pipeline.unexpected_slots": len(counts.keys() - expected),
            "pipeline.wrong_outcomes": wrong,
            "pipeline.busiest_second_over_mean": round(
                max(per_second.values(), default=0) / (len(in_window) / seconds or 1), 2
            ),
        }
    )
    for key in sorted(k for k in report if k.startswith("pipeline.") and "cpu" not in k):
        runtime.stage(f"  {key} = {report[key]}")


def _outcome_right(seen: Seen, path: int) -> bool:
    b = behaviour(path)
    return seen.ok == b.expect_ok and seen.failure == b.expect_failure


# --- CPU per process, from /proc (psutil is not installed) ------------------------

TICKS = os.sysconf("SC_CLK_TCK")
SERVICES = {
    "MariaDB": ("mariadbd", "mysqld"),
    "RabbitMQ": ("beam.smp",),
    "Redis": ("redis-server",),
}


def cpu_sample(processes: dict[str, Any], farm_pids: list[int]) -> dict[str, float]:
    """CPU seconds used so far by each process group we started and each service."""
    groups = {child.pid: name for name, child in processes.items()}
    groups.update({pid: "target farm" for pid in farm_pids})
    totals: dict[str, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        comm = text[text.index("(") + 1 : text.rindex(")")]
        values = text[text.rindex(")") + 2 :].split()
        pgrp, used = int(values[2]), (int(values[11]) + int(values[12])) / TICKS
        pid = int(stat.parent.name)
        name = groups.get(pgrp) or groups.get(pid)
        if name is None:
            name = next((svc for svc, comms in SERVICES.items() if comm in comms), None)
        if name is not None:
            totals[name] = totals.get(name, 0.0) + used
    totals["whole machine (all processes)"] = _machine_busy_seconds()
    return dict(totals)


def _machine_busy_seconds() -> float:
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / TICKS


def cpu_percent(
    before: dict[str, float], after: dict[str, float], *, seconds: float
) -> dict[str, float]:
    return {
        name: round((after[name] - before.get(name, 0.0)) / seconds * 100, 1)
        for name in sorted(after)
    }


# --- the baseline -----------------------------------------------------------------


def naive_loop(farm: Farm, *, monitors: int, seconds: float) -> float:
    """What a first version would do: one process, one check after another."""
    import requests

    done = 0
    deadline = time.monotonic() + seconds
    session = requests.Session()
    while time.monotonic() < deadline:
        url = farm.url(done % monitors)
        with contextlib.suppress(requests.RequestException):
            session.get(url, timeout=TIMEOUT_S)
        done += 1
    return round(done / seconds, 1)


def main(argv: list[str]) -> int:
    import argparse
    import json

    parser = argparse.ArgumentParser(description="the pipeline scenario on its own")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--monitors", type=int)
    parser.add_argument("--seconds", type=int)
    args = parser.parse_args(argv)
    if args.monitors:
        os.environ["BENCH_PIPELINE_MONITORS"] = str(args.monitors)
    if args.seconds:
        os.environ["BENCH_PIPELINE_SECONDS"] = str(args.seconds)
    report: dict[str, object] = {}
    try:
        run(quick=args.quick, report=report)
    finally:
        runtime.stop_all()
    print(json.dumps(report, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
