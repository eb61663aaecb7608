"""Dashboard scenario: the reporting queries over tens of millions of check results.

Dataset (kept between runs while still valid, see ``dataset_ready``): one user with
10,000 monitors; raw rows every 10 minutes for the last 28 days for the first monitors
(all 10,000 at full scale: 40.3 million rows; 1,000 monitors for 2 days in quick mode),
generated inside MariaDB by ``INSERT ... SELECT`` from a numbers table, one chunk of
monitors per transaction; each chunk's hourly rollups are then
aggregated from the rows just written (still in the buffer pool) and the daily ones
from the hourly ones.

Measured, server side, each call timed around the Python function the view calls:
- ``latency_series(bucket="1h")`` and ``uptime(window="30d")`` for random monitors,
  with the Redis cache out of the way (the functions under the cache are called);
- the overview page (``/dashboard/``, Django test client, template rendered) for the
  user with 10,000 monitors, random pages;
- the same 30-day hourly series computed naively: raw rows of an unpartitioned copy
  of the table with only an id primary key (no covering index, no rollups), grouped
  in Python. The copy holds the rows of the first monitors only (its size is
  reported); a full scan costs the same per row, so a larger copy is only slower.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from typing import Any

from benchmarks import runtime
from telemetry.histogram import bucket_sums_sql

INTERVAL_SECONDS = 600
MONITORS = 10_000
BENCH_USER = "bench-dashboard"
MARKER_TABLE = "bench_dashboard_dataset"
NAIVE_TABLE = "bench_check_result_naive"
CHUNK_MONITORS = 250


def run(*, quick: bool, report: dict[str, Any]) -> None:
    import django

    django.setup()
    scale = {"raw_monitors": 1_000, "days": 2} if quick else {"raw_monitors": MONITORS, "days": 28}
    user_id, monitor_ids = ensure_monitors()
    rows = ensure_dataset(owner_id=user_id, monitor_ids=monitor_ids, **scale)
    report["dashboard.rows"] = rows
    report["dashboard.monitors"] = len(monitor_ids)
    report["dashboard.raw_days"] = scale["days"]
    measure_queries(monitor_ids[: scale["raw_monitors"]], report, repeat=50 if quick else 200)
    measure_overview(user_id, report, repeat=20 if quick else 60)
    measure_naive(monitor_ids, report, quick=quick)


# SQL below is built from constants and column names only; values go as parameters.
# ruff: noqa: S608

# --- Dataset -------------------------------------------------------------------------


def ensure_monitors() -> tuple[int, list[int]]:
    """The bench user and its 10,000 monitors (bulk-created once)."""
    from django.contrib.auth.models import User

    from monitors.models import Monitor

    user, _ = User.objects.get_or_create(username=BENCH_USER)
    have = Monitor.objects.filter(owner=user).count()
    if have < MONITORS:
        runtime.stage(f"dashboard: creating {MONITORS - have} monitors for {BENCH_USER}")
        Monitor.objects.bulk_create(
            [
                Monitor(
                    owner=user,
                    project_id=user.personal_project.pk,
                    name=f"bench {n:05d}",
                    url=f"http://127.0.0.1:9/m{n}",
                    status=Monitor.Status.DOWN if n % 50 == 0 else Monitor.Status.UP,
                    interval_seconds=INTERVAL_SECONDS,
                )
                for n in range(have, MONITORS)
            ],
            batch_size=2000,
        )
    ids = list(Monitor.objects.filter(owner=user).order_by("pk").values_list("pk", flat=True))
    return user.pk, ids[:MONITORS]


def _execute(sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    from django.db import connection

    with connection.cursor() as cursor:
        # No parameters: no % formatting, so SQL may use % as modulo.
        cursor.execute(sql, params)
        return list(cursor.fetchall()) if cursor.description else []


def ensure_dataset(*, owner_id: int, monitor_ids: list[int], raw_monitors: int, days: int) -> int:
    """Generate the rows unless the marker says this exact dataset is there and recent."""
    end = dt.datetime.now(dt.UTC).replace(tzinfo=None, minute=0, second=0, microsecond=0)
    wanted = f"{monitor_ids[0]}-{monitor_ids[raw_monitors - 1]}:{raw_monitors}x{days}d"
    _execute(
        f"CREATE TABLE IF NOT EXISTS {MARKER_TABLE} "
        "(spec VARCHAR(100), end_at DATETIME, rows_total BIGINT)"
    )
    found = _execute(f"SELECT spec, end_at, rows_total FROM {MARKER_TABLE}")
    if found and dataset_ready(found[0], wanted, end, monitor_ids[0]):
        runtime.stage(f"dashboard: reusing the dataset {wanted} ({found[0][2]:,} rows)")
        _rebuild_summaries(monitor_ids[:raw_monitors])
        return int(found[0][2])
    runtime.stage(f"dashboard: generating {wanted} ending {end:%Y-%m-%d %H:%M} UTC")
    _execute(f"DELETE FROM {MARKER_TABLE}")
    for table in ("check_result", "check_rollup_hourly", "check_rollup_daily"):
        _execute(f"TRUNCATE TABLE {table}")
    slots = days * 86400 // INTERVAL_SECONDS
    _ensure_numbers(max(slots, CHUNK_MONITORS))
    start = end - dt.timedelta(seconds=slots * INTERVAL_SECONDS)
    started, total = time.monotonic(), 0
    chosen = monitor_ids[:raw_monitors]
    for first in range(0, len(chosen), CHUNK_MONITORS):
        chunk = chosen[first : first + CHUNK_MONITORS]
        total += _fill_chunk(chunk[0], chunk[-1], owner_id, start, slots)
        rate = total / (time.monotonic() - started)
        runtime.stage(f"dashboard: {total:,} rows ({rate:,.0f} rows/s incl. rollups)")
    _execute(
        f"INSERT INTO {MARKER_TABLE} VALUES (%s, %s, %s)",
        [wanted, end, total],
    )
    _execute(f"DROP TABLE IF EXISTS {NAIVE_TABLE}")
    _rebuild_summaries(chosen)
    return total


def _rebuild_summaries(monitor_ids: list[int]) -> None:
    """The per-monitor rollup summaries, from the rollups written above (the fold that
    keeps them in production never saw these rows); rebuilt on every run, so that
    today's slots are today's."""
    from telemetry.summary import summaries_rebuild

    started = time.monotonic()
    written = summaries_rebuild(monitor_ids=monitor_ids)
    runtime.stage(f"dashboard: {written:,} monitor summaries in {time.monotonic() - started:.1f} s")


def dataset_ready(found: tuple[Any, ...], wanted: str, end: dt.datetime, probe_id: int) -> bool:
    spec, end_at, _ = found
    if spec != wanted or end - end_at > dt.timedelta(hours=12):
        return False
    # Someone else's benchmark may have emptied the table since: look, cheaply.
    rows = _execute("SELECT 1 FROM check_result WHERE monitor_id = %s LIMIT 1", [probe_id])
    return bool(rows)


def _ensure_numbers(count: int) -> None:
    _execute("CREATE TABLE IF NOT EXISTS bench_numbers (n INT UNSIGNED PRIMARY KEY)")
    have = _execute("SELECT COUNT(*) FROM bench_numbers")[0][0]
    if have >= count:
        return
    _execute("TRUNCATE TABLE bench_numbers")
    _execute(
        "INSERT INTO bench_numbers (n) SELECT a.n + 10 * b.n + 100 * c.n + 1000 * d.n "
        "+ 10000 * e.n FROM (SELECT 0 n UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL "
        "SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL "
        "SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9) a, (SELECT 0 n UNION ALL SELECT 1 "
        "UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5 UNION "
        "ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9) b, (SELECT 0 "
        "n UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION "
        "ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL "
        "SELECT 9) c, (SELECT 0 n UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 "
        "UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION "
        "ALL SELECT 8 UNION ALL SELECT 9) d, (SELECT 0 n UNION ALL SELECT 1 UNION ALL SELECT "
        "2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION "
        "ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9) e"
    )


def _fill_chunk(low_id: int, high_id: int, owner_id: int, start: dt.datetime, slots: int) -> int:
    """Raw rows for monitors [low_id, high_id], then their rollups.

    Latency and failures are deterministic functions of (monitor, slot): every 50th
    monitor fails 15 % of its checks, the others 0.8 %; latencies spread from 20 ms to
    about 520 ms, so several histogram buckets fill.
    """
    from django.db import transaction

    from telemetry.histogram import BUCKET_COLUMNS

    h = "((m.id * 2654435761 + s.n * 40503) %% 1000)"
    ok = f"IF(m.id %% 50 = 0, {h} >= 150, {h} >= 8)"
    columns = ", ".join(BUCKET_COLUMNS)
    head = "checks, failures, latency_sum_ms, latency_min_ms, latency_max_ms"
    with transaction.atomic():
        _execute("SET SESSION unique_checks = 0")
        # The hourly GROUP BY holds one row per monitor and hour of the chunk; in memory
        # it takes seconds, spilled to an on-disk temporary table minutes.
        _execute("SET SESSION tmp_table_size = 1073741824, max_heap_table_size = 1073741824")
        _execute(
            "INSERT INTO check_result (monitor_id, scheduled_at, started_at, duration_ms, ok, "
            "status_code, failure, error) "
            f"SELECT m.id, s.at, s.at + INTERVAL ({h} %% 900) * 1000 MICROSECOND, "
            f"IF({ok}, 20 + ({h} * 37) %% 300 + m.id %% 200, 10000), {ok}, IF({ok}, 200, 503), "
            f"IF({ok}, NULL, 'status'), IF({ok}, '', 'expected 200-299, got 503') "
            "FROM monitors_monitor m JOIN (SELECT n, %s + INTERVAL n * %s SECOND AS at "
            "FROM bench_numbers WHERE n < %s) s ON TRUE "
            "WHERE m.id BETWEEN %s AND %s AND m.owner_id = %s",
            [start, INTERVAL_SECONDS, slots, low_id, high_id, owner_id],
        )
        inserted = _execute("SELECT ROW_COUNT()")[0][0]
        _execute(
            f"INSERT INTO check_rollup_hourly (monitor_id, hour_start, {head}, {columns}) "
            "SELECT monitor_id, DATE_FORMAT(scheduled_at, '%%Y-%%m-%%d %%H:00:00') AS period, "
            "COUNT(*), SUM(ok = 0), COALESCE(SUM(IF(ok = 1, duration_ms, 0)), 0), "
            "MIN(IF(ok = 1, duration_ms, NULL)), MAX(IF(ok = 1, duration_ms, NULL)), "
            f"{bucket_sums_sql()} FROM check_result WHERE monitor_id BETWEEN %s AND %s "
            "GROUP BY monitor_id, period",
            [low_id, high_id],
        )
        sums = ", ".join(f"SUM({column})" for column in BUCKET_COLUMNS)
        _execute(
            f"INSERT INTO check_rollup_daily (monitor_id, day, {head}, {columns}) "
            "SELECT monitor_id, DATE(hour_start) AS period, SUM(checks), SUM(failures), "
            f"SUM(latency_sum_ms), MIN(latency_min_ms), MAX(latency_max_ms), {sums} "
            "FROM check_rollup_hourly WHERE monitor_id BETWEEN %s AND %s "
            "GROUP BY monitor_id, period",
            [low_id, high_id],
        )
    return int(inserted)


# --- Measurements --------------------------------------------------------------------


def measure_queries(monitor_ids: list[int], report: dict[str, Any], *, repeat: int) -> None:
    from django.utils import timezone

    from reporting import queries

    rng = random.Random(5)
    now = timezone.now()
    series, uptime = [], []
    for _ in range(repeat):
        monitor_id = rng.choice(monitor_ids)
        started = time.perf_counter()
        points = queries.latency_series(
            monitor_id=monitor_id, bucket="1h", since=now - dt.timedelta(days=30), until=now
        )
        series.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        queries.uptime(monitor_id=monitor_id, window="30d", now=now)
        uptime.append((time.perf_counter() - started) * 1000)
    report["dashboard.series_30d_points"] = len(points)
    report["dashboard.series_30d_p95_ms"] = round(runtime.percentile(series, 0.95), 2)
    report["dashboard.uptime_30d_p95_ms"] = round(runtime.percentile(uptime, 0.95), 2)
    runtime.stage(
        f"dashboard: 30-day hourly series p95 {report['dashboard.series_30d_p95_ms']} ms "
        f"({len(points)} points), 30-day uptime p95 {report['dashboard.uptime_30d_p95_ms']} ms"
    )


def measure_overview(user_id: int, report: dict[str, Any], *, repeat: int) -> None:
    from django.contrib.auth.models import User
    from django.core.cache import cache
    from django.test import Client

    from reporting import queries
    from reporting.views import PAGE_SIZE

    client = Client(HTTP_HOST="localhost")
    client.force_login(User.objects.get(pk=user_id))
    pages = MONITORS // PAGE_SIZE
    rng = random.Random(6)
    cache.clear()
    started = time.perf_counter()
    project_ids = [User.objects.get(pk=user_id).personal_project.pk]
    queries.fleet_overview(project_ids=project_ids, now=dt.datetime.now(dt.UTC))
    report["dashboard.fleet_overview_uncached_ms"] = round(
        (time.perf_counter() - started) * 1000, 1
    )
    client.get("/dashboard/")  # fills the 30-second fleet cache, as any first visit does
    durations = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(f"/dashboard/?page={rng.randint(1, pages)}")
        durations.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"overview answered {response.status_code}")
    report["dashboard.overview_10k_p95_ms"] = round(runtime.percentile(durations, 0.95), 1)
    runtime.stage(
        f"dashboard: overview page p95 {report['dashboard.overview_10k_p95_ms']} ms "
        f"(fleet summary uncached {report['dashboard.fleet_overview_uncached_ms']} ms, "
        "cached 30 s)"
    )


def measure_naive(monitor_ids: list[int], report: dict[str, Any], *, quick: bool) -> None:
    """The 30-day hourly series without partitions, covering index or rollups."""
    from django.utils import timezone

    copy_monitors = 100 if quick else 1_000
    ids = monitor_ids[:copy_monitors]
    exists = _execute(f"SHOW TABLES LIKE '{NAIVE_TABLE}'")
    if not exists:
        runtime.stage(f"dashboard: naive copy of {copy_monitors} monitors' rows (no index)")
        _execute(
            f"CREATE TABLE {NAIVE_TABLE} (id BIGINT AUTO_INCREMENT PRIMARY KEY, "
            "monitor_id BIGINT NOT NULL, scheduled_at DATETIME(3) NOT NULL, "
            "started_at DATETIME(3) NOT NULL, duration_ms INT UNSIGNED NOT NULL, "
            "ok TINYINT(1) NOT NULL, status_code SMALLINT UNSIGNED NULL, "
            "failure VARCHAR(16) NULL, error VARCHAR(200) NOT NULL DEFAULT '') ENGINE=InnoDB"
        )
        # Stored in time order, as an append-only log would be.
        _execute(
            f"INSERT INTO {NAIVE_TABLE} (monitor_id, scheduled_at, started_at, duration_ms, ok, "
            "status_code, failure, error) SELECT monitor_id, scheduled_at, started_at, "
            "duration_ms, ok, status_code, failure, error FROM check_result "
            "WHERE monitor_id BETWEEN %s AND %s ORDER BY scheduled_at",
            [ids[0], ids[-1]],
        )
    naive_rows = _execute(f"SELECT COUNT(*) FROM {NAIVE_TABLE}")[0][0]
    report["dashboard.naive_rows"] = int(naive_rows)
    now = timezone.now()
    rng = random.Random(7)
    durations = []
    for _ in range(5 if quick else 10):
        monitor_id = rng.choice(ids)
        started = time.perf_counter()
        rows = _execute(
            f"SELECT scheduled_at, ok, duration_ms FROM {NAIVE_TABLE} "
            "WHERE monitor_id = %s AND scheduled_at >= %s AND scheduled_at < %s "
            "ORDER BY scheduled_at",
            [monitor_id, now - dt.timedelta(days=30), now],
        )
        hourly = _group_hourly(rows)
        durations.append((time.perf_counter() - started) * 1000)
    report["dashboard.naive_series_30d_p95_ms"] = round(runtime.percentile(durations, 0.95), 1)
    fast = report.get("dashboard.series_30d_p95_ms") or 0
    if fast:
        report["dashboard.naive_over_series_ratio"] = round(
            report["dashboard.naive_series_30d_p95_ms"] / fast, 1
        )
    runtime.stage(
        f"dashboard: naive 30-day series p95 {report['dashboard.naive_series_30d_p95_ms']} ms "
        f"over {naive_rows:,} unindexed rows ({len(hourly)} hours)"
    )


def _group_hourly(rows: list[tuple[Any, ...]]) -> dict[dt.datetime, list[int]]:
    """What an application without rollups does: bucket and sort in Python."""
    hours: dict[dt.datetime, list[int]] = {}
    for scheduled_at, ok, duration_ms in rows:
        if ok:
            hours.setdefault(scheduled_at.replace(minute=0, second=0, microsecond=0), []).append(
                duration_ms
            )
    for durations in hours.values():
        durations.sort()
    return hours
