"""Scenario ``pipeline``: N monitors at a 60 s interval through the real path.

Celery Beat (DatabaseScheduler, the migration-installed schedule) -> dispatch task ->
RabbitMQ -> probe workers (threads pool, aiohttp) -> the target farm on loopback ->
Redis stream -> ``manage.py ingest`` -> MySQL (``check_result``). After the window the
buffer is left to drain, and the rows in ``check_result`` are compared with what should
have happened: every phase-aligned slot of every monitor inside the measured window
checked once, on time, with the outcome the farm's path is known to produce. MySQL's
primary key keeps one row per slot, so duplicates are counted on the stream, which a
reader follows as results arrive (see ``StreamReader``).

Two runs (``measure``): the reference (100,000 monitors, ``pipeline.*``; the alerting
latency is measured beside it after its window) and a larger fleet (200,000,
``pipeline.fleet_200k.*``), from which the harness derives
``pipeline.largest_fleet_per_minute``.

Run alone: ``python -m benchmarks.pipeline [--quick] [--monitors N] [--fleet-monitors
N]`` (uses the environment's DATABASE_URL, REDIS_URL and CELERY_BROKER_URL as they are).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import runtime
from benchmarks.farm import Farm, behaviour, farm_running

INTERVAL_S = 60
TIMEOUT_S = 5
OWNER = "bench-pipeline"
# The window opens this long after the first dispatch. That dispatch catches every
# monitor up at once (all overdue at the same instant, claimed in id order, so each
# 1,000-row chunk holds slots all over the minute and goes out as ~60 small batches);
# at 60,000 monitors that burst takes ~40 s to absorb. BENCH_PIPELINE_WARMUP_S=60
# measures the fleet once it runs on Beat's per-minute dispatches only.
WARMUP_S = 10
SETTLE_S = TIMEOUT_S + 5  # after the window: let the last checks finish and land
DRAIN_TIMEOUT_S = 60  # then at most this long for ingest to empty the buffer
POLL_S = 0.5  # how often MySQL is asked which results became visible


@dataclass(frozen=True, slots=True)
class Seen:
    monitor_id: int
    scheduled_ms: int
    started_ms: int
    duration_ms: int
    ok: bool
    failure: str | None
    streamed_ms: int = 0  # when it was appended to the stream (its entry id); 0 if unknown
    region: str = "local"  # the probe region that made the check


def run(*, quick: bool, report: dict[str, object]) -> None:
    monitors = int(os.environ.get("BENCH_PIPELINE_MONITORS", 2_000 if quick else 100_000))
    window_s = int(os.environ.get("BENCH_PIPELINE_SECONDS", 40 if quick else 180))
    fleet = int(os.environ.get("BENCH_PIPELINE_FLEET_MONITORS", 4_000 if quick else 200_000))
    fleet_window_s = int(os.environ.get("BENCH_PIPELINE_FLEET_SECONDS", 15 if quick else 120))
    _django()
    with farm_running(processes=1) as (farm, farm_pids):
        report.update(
            measure(
                farm, farm_pids, monitors=monitors, window_s=window_s, quick=quick,
                beside=lambda: alerting_beside(quick=quick),
            )
        )  # fmt: skip
        report["pipeline.load_average_1m"] = round(os.getloadavg()[0], 2)
        if os.environ.get("BENCH_PIPELINE_NO_BASELINE") != "1":  # a scale sweep skips it
            # A rate, so the quick run measures it over less time (the quick run's time budget).
            baseline_s = min(window_s, QUICK_BASELINE_S) if quick else window_s
            runtime.stage(
                f"pipeline: baseline, one process with requests, same farm, {baseline_s} s"
            )
            report["baseline.naive_loop_checks_per_second"] = naive_loop(
                farm, monitors=monitors, seconds=baseline_s
            )
    if fleet:
        # The largest fleet asked for (benchmarks.__main__ derives the largest that held).
        with farm_running(processes=1) as (farm, farm_pids):
            figures = measure(farm, farm_pids, monitors=fleet, window_s=fleet_window_s, quick=quick)
        report.update({f"{FLEET}.{key}": figures[f"pipeline.{key}"] for key in FLEET_KEYS})


# The second run's keys (``pipeline.fleet_200k.<key>``): what judges a fleet, and what
# it cost. Its monitors, window and CPU tell the rest.
FLEET = "pipeline.fleet_200k"
FLEET_KEYS = (
    "monitors", "window_s", "warmup_s", "probe_workers", "expected_checks", "checks",
    "checks_per_second", "schedule_lag_p50_s", "schedule_lag_p99_s", "schedule_lag_max_s",
    "skipped_checks", "duplicate_checks", "results_ingested_twice", "stream_reader_missed",
    "wrong_outcomes", "busiest_second_over_mean", "buffer_drained",
    "mysql_transactions_per_1000_results", "result_to_mysql_p99_s",
    "cpu_percent_of_a_core", "probe_cpu_ms_per_check", "rss_mb",
)  # fmt: skip


def measure(
    farm: Farm,
    farm_pids: list[int],
    *,
    monitors: int,
    window_s: int,
    quick: bool,
    beside: Callable[[], dict[str, object]] | None = None,
) -> dict[str, object]:
    """One run of ``monitors`` monitors at 60 s; its figures under ``pipeline.*`` keys.

    ``beside`` runs after the window and the settle, with the whole pipeline still
    running at its rate; its figures are added. The window's figures never include
    it: CPU, memory and the MySQL counters are read before it starts, and results
    completed after the window are not timed to MySQL.
    """
    probe_processes = int(os.environ.get("BENCH_PROBE_PROCESSES", 2))
    probe_threads = int(os.environ.get("BENCH_PROBE_THREADS", 16 if quick else 128))
    warmup_s = int(os.environ.get("BENCH_PIPELINE_WARMUP_S", WARMUP_S))
    report: dict[str, object] = {}
    runtime.stage(
        f"pipeline: {monitors} monitors at {INTERVAL_S} s, window {window_s} s, "
        f"{probe_processes} probe workers x {probe_threads} threads"
    )
    ids = _create_monitors(farm, monitors)
    _purge_queues()
    processes = _start_pipeline(probe_processes, probe_threads)
    ingest = runtime.spawn(runtime.manage_args("ingest"), env=dict(os.environ))
    reader = StreamReader(set(ids))
    reader.start()
    watcher = MysqlWatcher(reader)
    watcher.start()
    _wait_for_workers(processes)
    # Beat only now: a dispatch before the workers listen would measure their
    # start-up (its batches wait, then arrive at once), not the pipeline.
    processes["beat"] = _start_beat()
    everything = {**processes, "ingest": ingest}
    memory = MemoryWatcher(everything, farm_pids)
    memory.start()
    kick_ms = _now_ms()
    _kick_dispatch()
    window = (kick_ms + warmup_s * 1000, kick_ms + (warmup_s + window_s) * 1000)
    runtime.stage("pipeline: first dispatch sent; Beat sends the next ones every minute")
    _sleep_until(window[0] / 1000, progress=reader)
    cpu_before = cpu_sample(everything, farm_pids)
    mysql_before = _mysql_counters(ids)
    _sleep_until(window[1] / 1000, progress=reader)
    cpu_after = cpu_sample(everything, farm_pids)
    watcher.completed_before_ms = window[1]
    time.sleep(SETTLE_S)
    mysql_steady = _mysql_counters(ids)
    memory.stop()
    if beside is not None:
        report.update(beside())
    for child in processes.values():
        runtime.stop(child)
    drained = _wait_for_drain(ingest, watcher)
    mysql_after = _mysql_counters(ids)
    reader.stop()
    watcher.stop()
    runtime.stop(ingest)
    _disable_monitors()
    stored = _stored_results(ids, window)
    if dump := os.environ.get("BENCH_PIPELINE_DUMP"):
        # For digging into a bad figure: one line per result seen on the stream.
        Path(dump).write_text(
            "".join(
                f"{x.monitor_id},{x.scheduled_ms},{x.started_ms},{x.ok},{x.failure}\n"
                for x in reader.seen
            )
        )
    _fill_report(
        report, ids=ids, stored=stored, streamed=reader.seen, window=window, monitors=monitors
    )
    _fill_mysql_report(
        report,
        counters=(mysql_before, mysql_steady, mysql_after),
        watcher=watcher,
        drained=drained,
    )
    report["pipeline.cpu_percent_of_a_core"] = cpu_percent(cpu_before, cpu_after, seconds=window_s)
    report.update(cpu_per_check(report))
    report["pipeline.rss_mb"] = memory.peaks_mib()
    runtime.stage(f"  pipeline.rss_mb = {report['pipeline.rss_mb']}")
    report["pipeline.probe_workers"] = f"{probe_processes} x {probe_threads} threads"
    report["pipeline.warmup_s"] = warmup_s
    return report


QUICK_BASELINE_S = 15


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
    # Other scenarios leave enabled monitors in the bench database (bench-telemetry's
    # 10,000, bench-alerting's); Beat would dispatch them too, as unmeasured extra load.
    Monitor.objects.exclude(owner=owner).filter(enabled=True).update(enabled=False)
    # Overdue by minutes: the first dispatch catches each up once, at its phase.
    overdue = timezone.now() - dt.timedelta(minutes=5)
    started = time.monotonic()
    Monitor.objects.bulk_create(
        (
            Monitor(
                owner=owner,
                project_id=owner.personal_project.pk,
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


def _describe_duplicates(streamed: list[Seen], keys: set[tuple[int, int]]) -> None:
    """Say whether duplicated slots were checked twice or one result pushed twice."""
    if not keys:
        return
    copies: dict[tuple[int, int], list[Seen]] = {}
    for seen in streamed:
        if (seen.monitor_id, seen.scheduled_ms) in keys:
            copies.setdefault((seen.monitor_id, seen.scheduled_ms), []).append(seen)
    pushed_twice = sum(1 for c in copies.values() if len({s.started_ms for s in c}) == 1)
    sample = next(iter(copies.values()))
    runtime.stage(
        f"pipeline: {len(keys)} slots on the stream more than once: {pushed_twice} with the "
        f"same start (one result pushed twice), {len(keys) - pushed_twice} checked twice; "
        f"e.g. {[(s.started_ms, s.streamed_ms) for s in sample]}"
    )


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
    probe_env = runtime.probe_worker_environment()
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
         "--scheduler", "sentinel.beat:Scheduler",
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
    """Follows the result stream from now on, keeping this run's monitors' results.

    A plain XREAD, no consumer group: it takes nothing from ingest. Ingest deletes what
    it has stored, so under load this reader can miss an entry deleted before it got
    there; the report counts those (``pipeline.stream_reader_missed``), which bounds
    how far ``duplicate_checks`` (counted here) can be short.
    """

    def __init__(self, monitor_ids: set[int]) -> None:
        super().__init__(name="stream-reader", daemon=True)
        self.monitor_ids = monitor_ids
        self.seen: list[Seen] = []
        self._stopping = threading.Event()

    def run(self) -> None:
        from telemetry.buffer import STREAM_KEY, buffer_client
        from telemetry.records import payload_decode

        client = buffer_client()
        last = "$"
        while not self._stopping.is_set():
            answer: Any = client.xread({STREAM_KEY: last}, count=500, block=500)
            for _stream, entries in answer or []:
                for entry_id, fields in entries:
                    last = entry_id
                    pushed_ms = int(entry_id.split(b"-", 1)[0])
                    # Wire rows: monitor, scheduled, started, duration, ok, _, failure, ...
                    for row in payload_decode(fields[b"r"]):
                        if row[0] in self.monitor_ids:
                            m, s, st, d, ok, _, failure = row[:7]
                            region = row[14] if len(row) > 14 else "local"
                            self.seen.append(Seen(m, s, st, d, ok, failure, pushed_ms, region))

    def stop(self) -> None:
        self._stopping.set()
        self.join(10)


class MysqlWatcher(threading.Thread):
    """Notes when each result the reader saw became visible in ``check_result``.

    Every ``POLL_S`` it asks MySQL which of the results still pending are there now; a
    result's visibility time is the end of the first poll that finds it. The true
    moment lies between the previous poll and that one, so a delay is overstated by at
    most ``POLL_S`` plus one query (resolution about 0.5 s).
    """

    def __init__(self, reader: StreamReader) -> None:
        super().__init__(name="mysql-watcher", daemon=True)
        self.reader = reader
        # key -> (check completed, appended to the stream), epoch ms
        self.pending: dict[tuple[int, int], tuple[int, int]] = {}
        self.delays: list[float] = []  # seconds from completion to visible in MySQL
        self.from_stream: list[float] = []  # seconds from the stream to visible in MySQL
        # Results completed from then on are not timed (the run goes on after its window).
        self.completed_before_ms = math.inf
        self._taken = 0
        self._stopping = threading.Event()

    def run(self) -> None:
        from django.db import connection

        try:
            while not self._stopping.wait(POLL_S):
                self.poll()
        finally:
            connection.close()

    def poll(self) -> None:
        from django.db import connection

        seen = self.reader.seen
        for s in seen[self._taken : len(seen)]:
            if s.started_ms + s.duration_ms < self.completed_before_ms:
                self.pending[(s.monitor_id, s.scheduled_ms)] = (
                    s.started_ms + s.duration_ms,
                    s.streamed_ms,
                )
        self._taken = len(seen)
        if not self.pending:
            return
        keys = sorted(self.pending, key=lambda k: k[1])[:5000]
        monitor_ids = sorted({k[0] for k in keys})
        placeholders = ", ".join(["%s"] * len(monitor_ids))
        with connection.cursor() as cursor:
            cursor.execute(
                # Only placeholders are formatted into the SQL.
                "SELECT monitor_id, scheduled_at FROM check_result "  # noqa: S608
                f"WHERE monitor_id IN ({placeholders}) AND scheduled_at BETWEEN %s AND %s",
                [*monitor_ids, _naive(keys[0][1]), _naive(keys[-1][1])],
            )
            rows = cursor.fetchall()
        visible_ms = _now_ms()
        for monitor_id, scheduled_at in rows:
            times = self.pending.pop((monitor_id, _epoch_ms(scheduled_at)), None)
            if times is not None:
                self.delays.append((visible_ms - times[0]) / 1000)
                self.from_stream.append((visible_ms - times[1]) / 1000)

    def stop(self) -> None:
        self._stopping.set()
        self.join(10)


def _naive(epoch_ms: int) -> dt.datetime:
    """Epoch ms as check_result stores it: naive UTC, millisecond precision."""
    return dt.datetime.fromtimestamp(epoch_ms / 1000, dt.UTC).replace(tzinfo=None)


def _epoch_ms(moment: dt.datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return round(moment.timestamp() * 1000)


def _wait_for_drain(ingest: Any, watcher: MysqlWatcher) -> bool:
    """Wait (bounded) until ingest has stored and deleted every buffered result."""
    from telemetry.buffer import STREAM_KEY, buffer_client

    client = buffer_client()
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while time.monotonic() < deadline:
        if ingest.poll() is not None:
            raise RuntimeError("manage.py ingest exited while the buffer drained")
        if client.xlen(STREAM_KEY) == 0:
            watcher.poll()  # the last results' visibility, before the window closes
            runtime.stage("pipeline: result buffer drained into MySQL")
            return True
        time.sleep(POLL_S)
    runtime.stage(f"pipeline: buffer NOT drained after {DRAIN_TIMEOUT_S} s")
    return False


def _mysql_counters(ids: list[int]) -> dict[str, int]:
    """Server-wide commit counters, and this run's rows in check_result."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW GLOBAL STATUS WHERE Variable_name IN ('Com_commit', 'Handler_commit')")
        counters = {name: int(value) for name, value in cursor.fetchall()}
        cursor.execute(
            "SELECT COUNT(*) FROM check_result WHERE monitor_id BETWEEN %s AND %s",
            [min(ids), max(ids)],
        )
        counters["rows"] = int(cursor.fetchone()[0])
    counters.update(_ingest_totals())
    return counters


def _ingest_totals() -> dict[str, int]:
    """Ingest's own transactions and results so far (its running totals in Redis)."""
    from telemetry.buffer import buffer_client
    from telemetry.stats import stats_read

    stats = stats_read(client=buffer_client())
    return {
        "ingest_transactions": stats.ingest_transactions_total,
        "ingest_results": stats.ingest_results_total,
    }


def _stored_results(ids: list[int], window: tuple[int, int]) -> list[Seen]:
    """This run's rows in check_result scheduled inside the window."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT monitor_id, scheduled_at, started_at, duration_ms, ok, failure "
            "FROM check_result WHERE monitor_id BETWEEN %s AND %s "
            "AND scheduled_at >= %s AND scheduled_at < %s",
            [min(ids), max(ids), _naive(window[0]), _naive(window[1])],
        )
        return [
            Seen(m, _epoch_ms(s), _epoch_ms(st), d, bool(ok), f)
            for m, s, st, d, ok, f in cursor.fetchall()
        ]


# --- figures --------------------------------------------------------------------


def _fill_report(
    report: dict[str, object],
    *,
    ids: list[int],
    stored: list[Seen],
    streamed: list[Seen],
    window: tuple[int, int],
    monitors: int,
) -> None:
    """Figures from the rows that landed in MySQL (the whole path), except duplicates,
    which MySQL's primary key folds into one row: those are counted on the stream."""
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
    in_window = stored
    counts = Counter((s.monitor_id, s.scheduled_ms) for s in in_window)
    streamed_counts = Counter(
        (s.monitor_id, s.scheduled_ms) for s in streamed if start <= s.scheduled_ms < end
    )
    _describe_duplicates(streamed, {key for key, n in streamed_counts.items() if n > 1})
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
            "pipeline.duplicate_checks": sum(n - 1 for n in streamed_counts.values() if n > 1),
            # Stored, but deleted from the stream before the reader got there.
            "pipeline.stream_reader_missed": len(counts.keys() - streamed_counts.keys()),
            # On the stream, but never stored: lost between Redis and MySQL.
            "pipeline.streamed_not_stored": len(streamed_counts.keys() - counts.keys()),
            "pipeline.unexpected_slots": len(counts.keys() - expected),
            "pipeline.wrong_outcomes": wrong,
            "pipeline.busiest_second_over_mean": round(
                max(per_second.values(), default=0) / (len(in_window) / seconds or 1), 2
            ),
        }
    )
    for key in sorted(k for k in report if k.startswith("pipeline.") and "cpu" not in k):
        runtime.stage(f"  {key} = {report[key]}")


def _fill_mysql_report(
    report: dict[str, object],
    *,
    counters: tuple[dict[str, int], dict[str, int], dict[str, int]],
    watcher: MysqlWatcher,
    drained: bool,
) -> None:
    """Transactions per 1,000 stored results, and result-to-MySQL delay.

    ``counters`` are read at the window's start, at its end plus the settle (the
    pipeline still running at its rate, nothing else started yet) and after the drain.
    Transactions and rows are counted between the first two: a steady stretch of the
    pipeline alone, whatever runs beside it afterwards. Com_commit counts COMMIT
    statements (ingest's one per batch, the probe batches' live-state updates,
    dispatch's, Beat's); Handler_commit also counts every autocommitted statement,
    reads included. Both are SERVER-WIDE: on a shared server they include everything
    else it does meanwhile (other databases' tests and benchmarks), so on a busy
    machine the figure is an upper bound for the pipeline, never flattering it.
    """
    before, steady, after = counters
    rows = steady["rows"] - before["rows"]
    ingest_txns = steady["ingest_transactions"] - before["ingest_transactions"]
    ingest_results = steady["ingest_results"] - before["ingest_results"]
    commits = steady["Com_commit"] - before["Com_commit"]
    handler = steady["Handler_commit"] - before["Handler_commit"]
    taken_to_drain = after["ingest_results"] - before["ingest_results"]
    report.update(
        {
            "pipeline.buffer_drained": drained,
            "pipeline.mysql_rows_stored": rows,
            # Every result ingest took from the window's start to the drain, minus the
            # rows they added: a slot checked twice or a result pushed twice. Unlike
            # duplicate_checks (the stream reader's count) it cannot miss an entry.
            "pipeline.results_ingested_twice": taken_to_drain - (after["rows"] - before["rows"]),
            "pipeline.mysql_com_commit": commits,
            "pipeline.mysql_handler_commit": handler,
            "pipeline.mysql_transactions_per_1000_results": (
                round(commits / rows * 1000, 2) if rows else float("nan")
            ),
            # Ingest's own: the transactions that store results (the telemetry goal).
            "pipeline.ingest_transactions_per_1000_results": (
                round(ingest_txns / ingest_results * 1000, 2) if ingest_results else float("nan")
            ),
            "pipeline.mysql_handler_commits_per_1000_results": (
                round(handler / rows * 1000, 2) if rows else float("nan")
            ),
            "pipeline.result_to_mysql_samples": len(watcher.delays),
            "pipeline.result_to_mysql_p50_s": round(runtime.percentile(watcher.delays, 0.5), 2),
            "pipeline.result_to_mysql_p99_s": round(runtime.percentile(watcher.delays, 0.99), 2),
            "pipeline.result_to_mysql_resolution_s": POLL_S,
            # The part of it after the probe worker appended the result to the stream
            # (the rest is the probe batch holding finished results until it pushes).
            "pipeline.stream_to_mysql_p50_s": round(
                runtime.percentile(watcher.from_stream, 0.5), 2
            ),
            "pipeline.stream_to_mysql_p99_s": round(
                runtime.percentile(watcher.from_stream, 0.99), 2
            ),
            "pipeline.result_to_mysql_never_seen": len(watcher.pending),
        }
    )
    for key in sorted(k for k in report if "mysql" in k or k.endswith("drained")):
        runtime.stage(f"  {key} = {report[key]}")


def _outcome_right(seen: Seen, path: int) -> bool:
    b = behaviour(path)
    return seen.ok == b.expect_ok and seen.failure == b.expect_failure


# --- CPU and memory per process, from /proc (psutil is not installed) -------------

TICKS = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
MIB = 1 << 20
MEMORY_EVERY_S = 1.0
SERVICES = {
    "MariaDB": ("mariadbd", "mysqld"),
    "RabbitMQ": ("beam.smp",),
    "Redis": ("redis-server",),
}


@dataclass(slots=True)
class Usage:
    cpu_s: float = 0.0  # CPU seconds used so far
    rss_bytes: int = 0  # resident now


def usage_by_role(processes: dict[str, Any], farm_pids: list[int]) -> dict[str, Usage]:
    """CPU and resident memory of each role: each process group we started (a worker
    and its pool), the farm, each service; summed over the role's processes."""
    groups = {child.pid: name for name, child in processes.items()}
    groups.update({pid: "target farm" for pid in farm_pids})
    roles: dict[str, Usage] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        comm = text[text.index("(") + 1 : text.rindex(")")]
        values = text[text.rindex(")") + 2 :].split()  # fields 3, 4, ... of proc(5)
        pid, pgrp = int(stat.parent.name), int(values[2])
        name = groups.get(pgrp) or groups.get(pid)
        if name is None:
            name = next((svc for svc, comms in SERVICES.items() if comm in comms), None)
        if name is not None:
            role = roles.setdefault(name, Usage())
            role.cpu_s += (int(values[11]) + int(values[12])) / TICKS
            role.rss_bytes += int(values[21]) * PAGE_BYTES
    return roles


def cpu_sample(processes: dict[str, Any], farm_pids: list[int]) -> dict[str, float]:
    """CPU seconds used so far by each process group we started and each service."""
    totals = {name: role.cpu_s for name, role in usage_by_role(processes, farm_pids).items()}
    totals["whole machine (all processes)"] = _machine_busy_seconds()
    return totals


class MemoryWatcher(threading.Thread):
    """The peak resident memory of each role, and of all of them together, sampled every
    ``MEMORY_EVERY_S``. Resident as the kernel counts it (``/proc/<pid>/stat``): a page
    shared by processes of one role counts once per process."""

    def __init__(self, processes: dict[str, Any], farm_pids: list[int]) -> None:
        super().__init__(name="memory-watcher", daemon=True)
        self.processes, self.farm_pids = processes, farm_pids
        self.peaks: dict[str, int] = {}
        self.peak_total = 0
        self._stopping = threading.Event()

    def run(self) -> None:
        while True:
            self.sample()
            if self._stopping.wait(MEMORY_EVERY_S):
                return

    def sample(self) -> None:
        now = {k: v.rss_bytes for k, v in usage_by_role(self.processes, self.farm_pids).items()}
        for name, rss in now.items():
            self.peaks[name] = max(self.peaks.get(name, 0), rss)
        self.peak_total = max(self.peak_total, sum(now.values()))

    def stop(self) -> None:
        self._stopping.set()
        self.join(10)

    def peaks_mib(self) -> dict[str, float]:
        """MiB per role, and ``total``: the most the roles held at one moment."""
        peaks = {name: round(rss / MIB, 1) for name, rss in sorted(self.peaks.items())}
        return {**peaks, "total": round(self.peak_total / MIB, 1)}


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


def cpu_per_check(report: dict[str, object]) -> dict[str, float]:
    """CPU ms per check of the probe workers (together) and of the farm."""
    cpu: Any = report["pipeline.cpu_percent_of_a_core"]
    rate: Any = report.get("pipeline.checks_per_second") or float("nan")
    probes = sum(v for k, v in cpu.items() if k.startswith("probe worker"))
    return {
        "pipeline.probe_cpu_ms_per_check": round(probes * 10 / rate, 3),
        "pipeline.farm_cpu_ms_per_check": round(cpu.get("target farm", 0.0) * 10 / rate, 3),
    }


# --- alerting beside the pipeline ------------------------------------------------

ALERTING_TIMEOUT_S = 600


def alerting_beside(*, quick: bool) -> dict[str, object]:
    """Notification latency while the pipeline runs: the alerting scenario's steady
    latency run, in a process of its own (``python -m benchmarks.alerting
    --beside-pipeline``) so that its work does not slow this process's stream reader;
    its keys are ``alerting.notify_latency_under_pipeline_*``."""
    runtime.stage("pipeline: notification latency with the pipeline running")
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "alerting.json"
        command = [sys.executable, "-m", "benchmarks.alerting", "--beside-pipeline"]
        command += ["--output", str(output), *(["--quick"] if quick else [])]
        child = runtime.spawn(command, env=dict(os.environ), quiet=False)
        try:
            code: int | None = child.wait(timeout=ALERTING_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            code = None  # stopped below; it stops its alerts worker on SIGTERM
        runtime.stop(child)
        if code != 0 or not output.exists():
            return {"pipeline.alerting_beside.error": f"{' '.join(command[1:4])}: exit {code}"}
        figures: dict[str, object] = json.loads(output.read_text())
        return figures


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

    parser = argparse.ArgumentParser(description="the pipeline scenario on its own")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--monitors", type=int)
    parser.add_argument("--seconds", type=int)
    parser.add_argument("--fleet-monitors", type=int, help="the second run (0: none)")
    args = parser.parse_args(argv)
    if args.monitors:
        os.environ["BENCH_PIPELINE_MONITORS"] = str(args.monitors)
    if args.seconds:
        os.environ["BENCH_PIPELINE_SECONDS"] = str(args.seconds)
    if args.fleet_monitors is not None:
        os.environ["BENCH_PIPELINE_FLEET_MONITORS"] = str(args.fleet_monitors)
    report: dict[str, object] = {}
    try:
        run(quick=args.quick, report=report)
    finally:
        runtime.stop_all()
    print(json.dumps(report, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
