"""Scenario ``regions``: the pipeline with three probe regions on this machine.

Three remote regions, ``r1``, ``r2`` and ``r3``, each with its own probe worker whose
checks leave from its own loopback address (127.0.0.2, .3, .4) and whose results come
back over RabbitMQ (the ``results`` queue, a central worker checking each against the
slots handed out) -> the Redis buffer -> ``manage.py ingest`` -> MySQL. Every monitor
checks from all three, so ``monitors = checks a minute / 3``: the same number of
checks a minute as the single-region pipeline's goal (100,000), spread over three
regions.

A fault over the measured window (its slots but those of its first and last 5 s)
makes the farm answer 503 to every request from r3's address (``benchmarks.farm``,
fault windows): r3 sees every target fail, r1 and r2 do not, and with the default
rule (2 of 3) no monitor whose target is healthy may go down, though r3 alone would
have downed them (``regions.r3_failed_twice_in_a_row`` counts those). The fault is
a set of slots, not a stretch of time: each farm path fails from half a period
before its monitor's first slot in the fault to half a period after its last
(``fault_windows``), so a check's request, which reaches the farm some milliseconds
after the check started, never lands on the other side of an edge from its slot.
Figures, per region and together (``regions.*``):

- ``regions.<r>.schedule_lag_p99_s``, ``.skipped_checks``, ``.duplicate_checks``,
  ``.wrong_outcomes`` (for r3's checks of a slot in the fault, the right outcome is
  the 503);
- ``regions.schedule_lag_p99_s`` (the worst region's), ``regions.skipped_checks``,
  ``regions.duplicate_checks``, ``regions.wrong_outcomes`` (summed over regions);
- ``regions.fault_incidents``: incidents opened on monitors whose target is healthy
  (the goal is 0), ``regions.refused_results`` (results the central consumer refused).

Run alone: ``python -m benchmarks.regions [--quick]``.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import tempfile
import time
from collections import Counter
from typing import Any

from benchmarks import runtime
from benchmarks.farm import behaviour, farm_running, fault_write
from benchmarks.pipeline import (
    INTERVAL_S,
    SETTLE_S,
    Seen,
    StreamReader,
    _create_monitors,
    _django,
    _kick_dispatch,
    _now_ms,
    _path_of,
    _start_beat,
)

REGIONS = {"r1": "127.0.0.2", "r2": "127.0.0.3", "r3": "127.0.0.4"}
FAULTY = "r3"
WARMUP_S = 15
FAULT_MARGIN_S = 5
DRAIN_TIMEOUT_S = 90


def run(*, quick: bool, report: dict[str, object]) -> None:
    per_minute = int(os.environ.get("BENCH_REGIONS_CHECKS_PER_MINUTE", 3_000 if quick else 100_000))
    window_s = int(os.environ.get("BENCH_REGIONS_SECONDS", 60 if quick else 180))
    threads = int(os.environ.get("BENCH_PROBE_THREADS", 16 if quick else 96))
    fault_file = os.path.join(tempfile.mkdtemp(prefix="sentinel-regions-"), "fault.json")
    os.environ["BENCH_FARM_FAULT_FILE"] = fault_file
    os.environ["SENTINEL_REGIONS"] = ",".join(REGIONS)
    _django()
    from django.conf import settings

    # The scenarios after this one check from the local region again (the harness puts
    # the environment back after each scenario; this process's settings are ours to).
    configured = settings.SENTINEL_REGIONS
    _regions_on(REGIONS)
    try:
        with farm_running(processes=1) as (farm, _pids):
            report.update(
                measure(
                    farm, monitors=per_minute // len(REGIONS), window_s=window_s,
                    threads=threads, fault_file=fault_file,
                )
            )  # fmt: skip
    finally:
        settings.SENTINEL_REGIONS = configured


def _regions_on(regions: dict[str, str]) -> None:
    """This process's settings and Celery app know the regions (the harness set Django
    up before this scenario, with the regions of its environment then)."""
    from django.conf import settings

    from core.regions import RESULTS_QUEUE, broker_queue, probe_queue
    from sentinel.celery import app

    settings.SENTINEL_REGIONS = list(regions)
    for name in [*(probe_queue(r) for r in regions), RESULTS_QUEUE]:
        queue = broker_queue(name, dead_letter_exchange=settings.SENTINEL_DEAD_LETTER_EXCHANGE)
        app.amqp.queues.select_add(queue)


def measure(
    farm: Any, *, monitors: int, window_s: int, threads: int, fault_file: str
) -> dict[str, object]:
    from core.broker import broker_queues_ensure
    from monitors.dispatch import monitor_phase_ms
    from sentinel.celery import app

    runtime.stage(
        f"regions: {monitors} monitors x {len(REGIONS)} regions at {INTERVAL_S} s, "
        f"window {window_s} s, one probe worker x {threads} threads per region"
    )
    ids = _create_monitors(farm, monitors)
    paths = _path_of(ids)
    _reset_incidents(ids)
    broker_queues_ensure(app=app)
    _purge()
    processes = _start(threads)
    ingest = runtime.spawn(runtime.manage_args("ingest"), env=dict(os.environ))
    reader = StreamReader(set(ids))
    reader.start()
    _wait_for_consumers(processes)
    processes["beat"] = _start_beat()
    kick_ms = _now_ms()
    _kick_dispatch()
    window = (kick_ms + WARMUP_S * 1000, kick_ms + (WARMUP_S + window_s) * 1000)
    # The slots of the whole window but its first and last FAULT_MARGIN_S: at 180 s, two
    # or three of every monitor, which would confirm an outage with one region.
    fault = (window[0] + FAULT_MARGIN_S * 1000, window[1] - FAULT_MARGIN_S * 1000)
    windows = fault_windows(
        {paths[pk]: monitor_phase_ms(monitor_id=pk, interval_seconds=INTERVAL_S) for pk in ids},
        fault=fault,
        period_ms=INTERVAL_S * 1000,
    )
    fault_write(fault_file, caller=REGIONS[FAULTY], windows=windows)
    runtime.stage(f"regions: {FAULTY}'s path fails for all but the window's ends")
    time.sleep(max(0.0, window[1] / 1000 - time.time()) + SETTLE_S)
    for child in processes.values():
        runtime.stop(child)
    drained = _wait_for_drain()
    reader.stop()
    runtime.stop(ingest)
    from benchmarks.pipeline import _disable_monitors

    _disable_monitors()
    report = _figures(ids, paths, window=window, fault=fault, streamed=reader.seen)
    report["regions.buffer_drained"] = drained
    report["regions.monitors"] = monitors
    report["regions.checks_per_minute"] = monitors * len(REGIONS)
    report["regions.window_s"] = window_s
    report["regions.probe_workers"] = f"{len(REGIONS)} regions x 1 x {threads} threads"
    for key in sorted(report):
        runtime.stage(f"  {key} = {report[key]}")
    return report


def fault_windows(
    phases: dict[int, int], *, fault: tuple[int, int], period_ms: int
) -> dict[int, tuple[float, float]]:
    """Each farm path's fault window, ``(start, end)`` in epoch seconds, from its
    monitor's phase (``phases``: path -> phase in ms, ``monitor_phase_ms``): from half
    a period before the monitor's first slot in ``fault`` (``[start, end)`` in epoch
    ms) to half a period after its last, so that a request within half a period of
    its slot fails exactly when the slot is in ``fault``."""
    from monitors.dispatch import align_up

    half = period_ms / 2
    windows = {}
    for path, phase in phases.items():
        first = align_up(fault[0], period_ms=period_ms, phase_ms=phase)
        after = align_up(fault[1], period_ms=period_ms, phase_ms=phase)
        windows[path] = ((first - half) / 1000, (after - half) / 1000)
    return windows


def _reset_incidents(ids: list[int]) -> None:
    from monitors.models import Incident

    Incident.objects.filter(monitor_id__in=ids).delete()


def _purge() -> None:
    from core.regions import RESULTS_QUEUE, probe_queue
    from sentinel.celery import app

    with app.connection_for_write() as conn:
        for name in ("dispatch", RESULTS_QUEUE, *(probe_queue(r) for r in REGIONS)):
            app.amqp.queues[name].bind(conn.default_channel).purge()


def _start(threads: int) -> dict[str, Any]:
    from core.regions import probe_queue

    celery = [sys.executable, "-m", "celery", "-A", "sentinel", "worker"]
    quiet = ["--without-gossip", "--without-mingle", "--loglevel", "WARNING"]
    pid = os.getpid()
    processes = {
        "dispatch worker": runtime.spawn(
            [*celery, "--queues", "dispatch", "--pool", "solo",
             "--hostname", f"bench-dispatch-{pid}@%h", *quiet],
        ),
        "results worker": runtime.spawn(
            [*celery, "--queues", "results", "--pool", "threads", "--concurrency", "4",
             "--hostname", f"bench-results-{pid}@%h", *quiet],
        ),
    }  # fmt: skip
    for region, address in REGIONS.items():
        env = {
            **runtime.probe_worker_environment(),
            "SENTINEL_REGION": region,
            "SENTINEL_SOURCE_ADDRESS": address,
        }
        processes[f"probe worker {region}"] = runtime.spawn(
            [*celery, "--queues", probe_queue(region), "--pool", "threads",
             "--concurrency", str(threads), "--without-heartbeat",
             "--hostname", f"bench-{region}-{pid}@%h", *quiet],
            env=env,
            quiet=False,
        )  # fmt: skip
    return processes


def _wait_for_consumers(processes: dict[str, Any], timeout: float = 240) -> None:
    """Every queue has its consumer (a region's worker answers no ping: it has no
    remote control)."""
    from core.broker import queue_depth
    from core.regions import RESULTS_QUEUE, probe_queue
    from sentinel.celery import app

    names = ["dispatch", RESULTS_QUEUE, *(probe_queue(r) for r in REGIONS)]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dead = [name for name, child in processes.items() if child.poll() is not None]
        if dead:
            raise RuntimeError(f"{', '.join(dead)} exited during start-up")
        if all(queue_depth(app=app, name=name)[1] >= 1 for name in names):
            runtime.stage("regions: every queue has its worker")
            return
        time.sleep(1)
    raise RuntimeError(f"not every queue had a worker within {timeout:.0f} s")


def _wait_for_drain() -> bool:
    from telemetry.buffer import buffer_depth

    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while time.monotonic() < deadline:
        if buffer_depth() == 0:
            return True
        time.sleep(1)
    return False


def _stored(ids: list[int], window: tuple[int, int]) -> list[tuple[Any, ...]]:
    from django.db import connection

    from benchmarks.pipeline import _epoch_ms, _naive

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT monitor_id, scheduled_at, started_at, ok, failure, region FROM check_result "
            "WHERE monitor_id BETWEEN %s AND %s AND scheduled_at >= %s AND scheduled_at < %s",
            [min(ids), max(ids), _naive(window[0]), _naive(window[1])],
        )
        return [(m, _epoch_ms(s), _epoch_ms(st), bool(ok), f, r) for m, s, st, ok, f, r in cursor]


def _figures(
    ids: list[int],
    paths: dict[int, int],
    *,
    window: tuple[int, int],
    fault: tuple[int, int],
    streamed: list[Seen],
) -> dict[str, object]:
    from monitors.dispatch import monitor_phase_ms

    start, end = window
    period = INTERVAL_S * 1000
    expected: set[tuple[int, int]] = set()
    for pk in ids:
        slot = (
            start + (monitor_phase_ms(monitor_id=pk, interval_seconds=INTERVAL_S) - start) % period
        )
        while slot < end:
            expected.add((pk, slot))
            slot += period
    rows = _stored(ids, window)
    on_stream = Counter(
        (x.monitor_id, x.scheduled_ms, x.region) for x in streamed if start <= x.scheduled_ms < end
    )
    report: dict[str, Any] = {}
    for region in REGIONS:
        mine = [row for row in rows if row[5] == region]
        lags = [(st - s) / 1000 for _m, s, st, _ok, _f, _r in mine]
        wrong = sum(1 for row in mine if not outcome_right(row, paths[row[0]], fault))
        report[f"regions.{region}.checks"] = len(mine)
        report[f"regions.{region}.schedule_lag_p99_s"] = round(runtime.percentile(lags, 0.99), 3)
        report[f"regions.{region}.skipped_checks"] = len(expected - {(r[0], r[1]) for r in mine})
        report[f"regions.{region}.duplicate_checks"] = sum(
            n - 1 for key, n in on_stream.items() if key[2] == region and n > 1
        )
        report[f"regions.{region}.wrong_outcomes"] = wrong
    for figure in ("skipped_checks", "duplicate_checks", "wrong_outcomes"):
        report[f"regions.{figure}"] = sum(report[f"regions.{r}.{figure}"] for r in REGIONS)
    report["regions.schedule_lag_p99_s"] = max(
        report[f"regions.{r}.schedule_lag_p99_s"] for r in REGIONS
    )
    report["regions.expected_checks_per_region"] = len(expected)
    report["regions.fault_incidents"] = _healthy_incidents(ids, paths)
    report[f"regions.{FAULTY}_failed_twice_in_a_row"] = _failed_twice(rows, paths)
    return report


def _failed_twice(rows: list[tuple[Any, ...]], paths: dict[int, int]) -> int:
    """Healthy monitors whose checks from the faulty region failed twice in a row: each
    would have opened an incident with that region alone (the default rule is 2 in a
    row), so this says the fault window tested what it should."""
    failed: dict[int, list[tuple[int, bool]]] = {}
    for m, s, _st, ok, _f, region in rows:
        if region == FAULTY and behaviour(paths[m]).expect_ok:
            failed.setdefault(m, []).append((s, ok))
    count = 0
    for checks in failed.values():
        outcomes = [ok for _s, ok in sorted(checks)]
        count += any(not a and not b for a, b in itertools.pairwise(outcomes))
    return count


def outcome_right(row: tuple[Any, ...], path: int, fault: tuple[int, int]) -> bool:
    """Whether a stored result ``(monitor, scheduled ms, started ms, ok, failure,
    region)`` of farm path ``path`` is what the farm answers: its behaviour, or for
    the faulty region's checks of a slot in ``fault`` (epoch ms), a 503."""
    _m, scheduled, _started, ok, failure, region = row
    b = behaviour(path)
    if region == FAULTY and fault[0] <= scheduled < fault[1] and b.kind != "refused":
        # The farm answers r3's request with a 503 at once (a refused port refuses
        # before the farm could answer). By the slot, not by when the check started:
        # the farm's window for the path has half a period to spare around the slot.
        return not ok and failure == "status"
    return ok == b.expect_ok and failure == b.expect_failure


def _healthy_incidents(ids: list[int], paths: dict[int, int]) -> int:
    """Incidents on monitors whose target answers (the fault is r3's alone)."""
    from monitors.models import Incident

    opened = Incident.objects.filter(monitor_id__in=ids).values_list("monitor_id", flat=True)
    return sum(1 for m in opened if behaviour(paths[m]).expect_ok)


def main(argv: list[str]) -> int:
    os.environ.update(runtime.bench_environment(dict(os.environ)))
    report: dict[str, object] = {}
    try:
        run(quick="--quick" in argv, report=report)
    finally:
        runtime.stop_all()
    print(json.dumps(report, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
