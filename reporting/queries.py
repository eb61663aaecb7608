"""The read side: one raw-SQL function per question the dashboard and the API ask.

Every query names one monitor (or one page of monitors) and a time range, so it is a
primary-key range scan pruned to the partitions of the range:

- ``check_result`` (PK ``check_result_pk`` = monitor_id, scheduled_at; daily partitions)
  for the partial hours at the edges of a window, the last few hours at 5-minute
  resolution and the raw check list;
- ``check_rollup_hourly`` (PK monitor_id, hour_start; monthly partitions) for a
  window's whole hours and hourly series;
- ``check_rollup_daily`` (PK monitor_id, day; monthly partitions) for a window's whole
  UTC days, daily series and the 90-day uptime bars.

A window ("24h", "7d", ...) is exactly ``(now - length, now]``: whole days and hours from
the rollups, the partial hours at its two edges from raw rows (``reporting.windows``).
Series and bars are bucketed by hour or day on purpose and read whole buckets.

Latency figures cover successful checks only (a timeout is not a slow answer), as the
rollups do. Percentiles from rollups are the upper bound of the histogram bucket that
holds them (``telemetry.histogram``), and a window's raw edge rows are counted into the
same buckets; in 5-minute series (raw rows only) they are exact.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connection

from core.db import sql_ids
from core.time import as_utc, naive_utc
from monitors.models import Monitor
from reporting.windows import DAY, floor_hour, spans_sql, window_plan
from telemetry.histogram import BUCKET_COLUMNS, bucket_sums_sql, percentile, percentiles_ms
from telemetry.summary import summaries_day_totals, summaries_read

WINDOWS: dict[str, dt.timedelta] = {
    "24h": dt.timedelta(hours=24),
    "7d": dt.timedelta(days=7),
    "30d": dt.timedelta(days=30),
    "90d": dt.timedelta(days=90),
    "1y": dt.timedelta(days=365),
}
# The overview's uptime columns.
SUMMARY_WINDOWS = ("24h", "7d", "30d")
QUANTILES = (0.5, 0.95, 0.99)
HISTOGRAM_COLUMNS = ", ".join(BUCKET_COLUMNS)
# (checks, failures, latency sum, min, max, *buckets) of a set of rollup rows ...
ROLLUP_SUMS = (
    "SUM(checks), SUM(failures), SUM(latency_sum_ms), MIN(latency_min_ms), "
    "MAX(latency_max_ms), " + ", ".join(f"SUM({column})" for column in BUCKET_COLUMNS)
)
# ... and the same of a set of raw rows: the rollups' rule (latency of successful checks
# only), durations counted into the rollups' histogram buckets.
RAW_SUMS = (
    "COUNT(*), SUM(ok = 0), SUM(IF(ok = 1, duration_ms, 0)), MIN(IF(ok = 1, duration_ms, NULL)), "
    "MAX(IF(ok = 1, duration_ms, NULL)), " + bucket_sums_sql()
)


@dataclass(frozen=True, slots=True)
class Bucket:
    seconds: int
    default_span: dt.timedelta
    max_span: dt.timedelta


BUCKETS: dict[str, Bucket] = {
    "5m": Bucket(300, dt.timedelta(hours=24), dt.timedelta(days=7)),
    "1h": Bucket(3600, dt.timedelta(days=7), dt.timedelta(days=93)),
    "1d": Bucket(86400, dt.timedelta(days=90), dt.timedelta(days=400)),
}


@dataclass(frozen=True, slots=True)
class LatencyStats:
    """Counts and latency of the checks in one period (a bucket or a whole window)."""

    start: dt.datetime | None
    checks: int
    failures: int
    avg_ms: float | None
    p50_ms: int | None
    p95_ms: int | None
    p99_ms: int | None
    min_ms: int | None
    max_ms: int | None

    @property
    def uptime_percent(self) -> float | None:
        return None if not self.checks else 100.0 * (self.checks - self.failures) / self.checks


@dataclass(frozen=True, slots=True)
class DayBar:
    day: dt.date
    checks: int
    failures: int

    @property
    def uptime_percent(self) -> float | None:
        return None if not self.checks else 100.0 * (self.checks - self.failures) / self.checks


@dataclass(frozen=True, slots=True)
class CheckRow:
    scheduled_at: dt.datetime
    started_at: dt.datetime
    ok: bool
    status_code: int | None
    duration_ms: int
    failure: str | None
    error: str
    tls_expires_at: dt.datetime | None
    region: str = "local"


@dataclass(frozen=True, slots=True)
class RegionLatest:
    """A probe region's newest check of a monitor."""

    region: str
    scheduled_at: dt.datetime
    ok: bool
    duration_ms: int
    failure: str | None
    error: str


@dataclass(frozen=True, slots=True)
class PingRow:
    """One stored heartbeat ping (heartbeat_ping), as the monitor page and API show it."""

    received_at: dt.datetime
    kind: str  # success, start, fail, log or exit
    exit_status: int | None
    run_id: str
    duration_ms: int | None  # run time from the paired start
    method: str
    remote_addr: str
    user_agent: str
    body: str
    body_truncated: bool


@dataclass(slots=True)
class MonitorSummary:
    """What the overview shows for one monitor."""

    monitor_id: int
    # Uptime % over exactly (now - 24 h, now], (now - 7 d, now] and (now - 30 d, now].
    uptime_24h: float | None = None
    uptime_7d: float | None = None
    uptime_30d: float | None = None
    last_latency_ms: int | None = None
    last_ok: bool | None = None
    # Mean latency per hour over the last 24 hours, oldest first; None = no data.
    sparkline: list[float | None] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class FleetOverview:
    status_counts: dict[str, int]
    # (monitor id, name, uptime %) since yesterday (UTC), worst first; only monitors
    # with failures.
    worst_uptime: list[tuple[int, str, float]]
    # (monitor id, name, mean latency ms) since yesterday (UTC), slowest first.
    slowest: list[tuple[int, str, float]]


def _fetch(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


def _stats_from_rollup(start: dt.datetime | None, row: Sequence[Any]) -> LatencyStats:
    """(checks, failures, latency_sum, min, max, *buckets) -> LatencyStats."""
    checks, failures, latency_sum, low, high, *counts = row
    checks, failures = int(checks or 0), int(failures or 0)
    ok = checks - failures
    p50, p95, p99 = histogram_percentiles([int(c or 0) for c in counts])
    return LatencyStats(
        start=start,
        checks=checks,
        failures=failures,
        avg_ms=float(latency_sum) / ok if ok else None,
        p50_ms=_clamp(p50, low, high),
        p95_ms=_clamp(p95, low, high),
        p99_ms=_clamp(p99, low, high),
        min_ms=None if low is None else int(low),
        max_ms=None if high is None else int(high),
    )


def histogram_percentiles(counts: Sequence[int]) -> tuple[int | None, ...]:
    """p50, p95 and p99 of bucket counts (``telemetry.histogram.percentiles_ms``)."""
    return percentiles_ms(counts, QUANTILES)


def _clamp(value: int | None, low: Any, high: Any) -> int | None:
    """A bucket bound never beyond what was seen: p99 of checks all at 120 ms is 120,
    not the bucket's 150."""
    if value is None or low is None or high is None:
        return value
    return max(int(low), min(value, int(high)))


def window_summary(*, monitor_id: int, since: dt.datetime, until: dt.datetime) -> LatencyStats:
    """Uptime and latency of one monitor over exactly the window ``(since, until]``
    (aware datetimes): checks, failures, avg/p50/p95/p99/min/max in ms (None without a
    successful check), ``start`` = ``since``. Raises ``ValueError`` unless
    ``since < until``.

    One query, up to three ``UNION ALL`` parts, each a primary-key range read of one
    monitor pruned to the partitions of its spans (``reporting.windows.window_plan``):
    ``check_rollup_daily`` (``check_rollup_daily_pk``: monitor_id, day) for the whole
    UTC days, ``check_rollup_hourly`` (``check_rollup_hourly_pk``) for the other whole
    hours and ``check_result`` (``check_result_pk``: monitor_id, scheduled_at) for the
    partial hours at the two edges. A 30-day window is at most 29 daily and 46 hourly
    rows and two hours of raw rows. The edge rows are counted into the rollups'
    histogram buckets (``telemetry.histogram.bucket_sums_sql``, the rule of
    ``bucket_index``): a raw duration and a bucket count cannot be merged exactly, so a
    window's percentiles are the upper bound of the bucket that holds them, clamped to
    the window's exact min and max; count, failures, avg, min and max are exact.
    """
    plan = window_plan(since, until)
    parts, params = [], []
    for table, column, spans, sums in (
        ("check_rollup_daily", "day", plan.days, ROLLUP_SUMS),
        ("check_rollup_hourly", "hour_start", plan.hours, ROLLUP_SUMS),
        ("check_result", "scheduled_at", plan.raw, RAW_SUMS),
    ):
        if spans:
            condition, values = spans_sql(spans, column, dates=table == "check_rollup_daily")
            parts.append(f"SELECT {sums} FROM {table} WHERE monitor_id = %s AND {condition}")  # noqa: S608
            params += [monitor_id, *values]
    rows = _fetch(" UNION ALL ".join(parts), params)
    return _stats_from_rollup(as_utc(since), _add_up(rows))


def _add_up(rows: Sequence[Sequence[Any]]) -> tuple[Any, ...]:
    """Rows of (checks, failures, latency sum, min, max, *buckets) as one such row;
    NULL (a part without rows) counts as nothing."""
    checks, failures, latency_sum, *counts = (
        sum(int(row[i] or 0) for row in rows) for i in (0, 1, 2, *range(5, 5 + len(BUCKET_COLUMNS)))
    )
    lows = [int(row[3]) for row in rows if row[3] is not None]
    highs = [int(row[4]) for row in rows if row[4] is not None]
    return (
        checks,
        failures,
        latency_sum,
        min(lows, default=None),
        max(highs, default=None),
        *counts,
    )


def uptime(*, monitor_id: int, window: str, now: dt.datetime) -> float | None:
    """Uptime % over the named window (24h, 7d, 30d, 90d, 1y) ending ``now``, i.e.
    ``(now - length, now]`` exactly (``window_summary``). None when there were no
    checks; ``KeyError`` for an unknown window."""
    return window_summary(
        monitor_id=monitor_id, since=now - WINDOWS[window], until=now
    ).uptime_percent


# --- Series --------------------------------------------------------------------------


def latency_series(
    *, monitor_id: int, bucket: str, since: dt.datetime, until: dt.datetime
) -> list[LatencyStats]:
    """Latency per bucket (avg, p50, p95, p99, min, max, plus checks and failures),
    oldest first; buckets without checks are left out. ``ValueError`` for an unknown
    bucket.

    Bucketed by design, unlike a window: every point is a whole 5-minute, hour or UTC
    day bucket, from the one that holds ``since`` (so the first may begin before it) to
    the one that holds ``until``; a point's ``start`` says which.

    5m: raw rows by ``check_result_pk`` (monitor_id, scheduled_at), pruned to the daily
    partitions of the range (at most 7 days); percentiles exact.
    1h: ``check_rollup_hourly`` by its PK, one row per hour.
    1d: ``check_rollup_daily`` by its PK, one row per day.
    """
    if bucket == "5m":
        return _series_from_raw(monitor_id, since, until, BUCKETS["5m"].seconds)
    if bucket == "1h":
        rows = _fetch(
            "SELECT hour_start, checks, failures, latency_sum_ms, latency_min_ms, "  # noqa: S608
            f"latency_max_ms, {HISTOGRAM_COLUMNS} FROM check_rollup_hourly "
            "WHERE monitor_id = %s AND hour_start >= %s AND hour_start < %s "
            "ORDER BY hour_start",
            [monitor_id, naive_utc(floor_hour(since)), naive_utc(until)],
        )
        return [_stats_from_rollup(as_utc(start), rest) for start, *rest in rows]
    if bucket == "1d":
        rows = _fetch(
            "SELECT day, checks, failures, latency_sum_ms, latency_min_ms, "  # noqa: S608
            f"latency_max_ms, {HISTOGRAM_COLUMNS} FROM check_rollup_daily "
            "WHERE monitor_id = %s AND day >= %s AND day <= %s ORDER BY day",
            [monitor_id, naive_utc(since).date(), naive_utc(until).date()],
        )
        return [
            _stats_from_rollup(dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC), rest)
            for day, *rest in rows
        ]
    raise ValueError(f"unknown bucket {bucket!r}; use one of {', '.join(BUCKETS)}")


def _series_from_raw(
    monitor_id: int, since: dt.datetime, until: dt.datetime, seconds: int
) -> list[LatencyStats]:
    # The durations come back in key order (no filesort); grouping in Python keeps the
    # exact percentiles that MySQL has no aggregate for.
    rows = _fetch(
        "SELECT scheduled_at, ok, duration_ms FROM check_result "
        "WHERE monitor_id = %s AND scheduled_at >= %s AND scheduled_at < %s "
        "ORDER BY scheduled_at",
        [monitor_id, naive_utc(since), naive_utc(until)],
    )
    groups: dict[int, tuple[list[int], list[int]]] = {}
    for scheduled_at, ok, duration_ms in rows:
        key = int(as_utc(scheduled_at).timestamp()) // seconds * seconds
        passed, failed = groups.setdefault(key, ([], []))
        (passed if ok else failed).append(int(duration_ms))
    return [
        _stats_from_durations(dt.datetime.fromtimestamp(key, tz=dt.UTC), passed, len(failed))
        for key, (passed, failed) in groups.items()
    ]


def _stats_from_durations(start: dt.datetime, passed: list[int], failures: int) -> LatencyStats:
    passed.sort()
    return LatencyStats(
        start=start,
        checks=len(passed) + failures,
        failures=failures,
        avg_ms=sum(passed) / len(passed) if passed else None,
        p50_ms=percentile(passed, 0.5),
        p95_ms=percentile(passed, 0.95),
        p99_ms=percentile(passed, 0.99),
        min_ms=passed[0] if passed else None,
        max_ms=passed[-1] if passed else None,
    )


# --- Daily uptime bars ---------------------------------------------------------------


def daily_uptime(*, monitor_id: int, days: int, today: dt.date) -> list[DayBar]:
    """One bar per UTC day for the last ``days`` days ending ``today``, oldest first;
    days without checks have ``checks == 0`` (shown as "no data"). Whole days by
    design: a bar is a calendar day, today's so far.

    ``check_rollup_daily`` by ``check_rollup_daily_pk`` (monitor_id, day): ``days`` rows.
    """
    first = today - dt.timedelta(days=days - 1)
    rows = _fetch(
        "SELECT day, checks, failures FROM check_rollup_daily "
        "WHERE monitor_id = %s AND day >= %s AND day <= %s",
        [monitor_id, first, today],
    )
    found = {day: (int(checks), int(failures)) for day, checks, failures in rows}
    return [
        DayBar(day, *found.get(day, (0, 0)))
        for day in (first + dt.timedelta(days=i) for i in range(days))
    ]


# --- Raw checks ----------------------------------------------------------------------


def heartbeat_pings(*, monitor_id: int, limit: int = 20) -> list[PingRow]:
    """A heartbeat's last ``limit`` pings, newest first, with their bodies.

    ``heartbeat_ping_pk`` (monitor_id, received_at) read backwards, stopped by the
    LIMIT: the cost of one page, whatever the retention holds."""
    rows = _fetch(
        "SELECT received_at, kind, exit_status, run_id, duration_ms, method, remote_addr, "
        "user_agent, body, body_truncated FROM heartbeat_ping WHERE monitor_id = %s "
        "ORDER BY received_at DESC LIMIT %s",
        [monitor_id, limit],
    )
    return [
        PingRow(
            received_at=as_utc(r[0]),
            kind=r[1],
            exit_status=r[2],
            run_id=r[3],
            duration_ms=r[4],
            method=r[5],
            remote_addr=r[6],
            user_agent=r[7],
            body=r[8],
            body_truncated=bool(r[9]),
        )
        for r in rows
    ]


def recent_checks(
    *,
    monitor_id: int,
    before: dt.datetime | None = None,
    before_region: str | None = None,
    limit: int = 50,
) -> list[CheckRow]:
    """The monitor's checks newest first (a slot's regions in reverse name order),
    below ``(before, before_region)`` (keyset pagination: the next page starts below
    the last row's slot and region, never OFFSET; without a region, below the slot).

    ``check_result_pk`` (monitor_id, scheduled_at, region) read backwards; the LIMIT
    stops the scan after ``limit`` rows, so a page costs the same on day 1 and day 90.
    """
    condition = ""
    params: list[Any] = [monitor_id]
    if before is not None and before_region is not None:
        condition = " AND (scheduled_at < %s OR (scheduled_at = %s AND region < %s))"
        params += [naive_utc(before), naive_utc(before), before_region]
    elif before is not None:
        condition = " AND scheduled_at < %s"
        params.append(naive_utc(before))
    rows = _fetch(
        "SELECT scheduled_at, started_at, ok, status_code, duration_ms, failure, error, "  # noqa: S608
        f"tls_expires_at, region FROM check_result WHERE monitor_id = %s{condition} "
        "ORDER BY scheduled_at DESC, region DESC LIMIT %s",
        [*params, limit],
    )
    return [
        CheckRow(
            scheduled_at=as_utc(r[0]),
            started_at=as_utc(r[1]),
            ok=bool(r[2]),
            status_code=r[3],
            duration_ms=int(r[4]),
            failure=r[5],
            error=r[6],
            tls_expires_at=None if r[7] is None else as_utc(r[7]),
            region=r[8],
        )
        for r in rows
    ]


def region_latest(
    *, monitor_id: int, regions: Sequence[str], now: dt.datetime
) -> list[RegionLatest]:
    """The newest check of the monitor from each of ``regions`` within the last day, in
    their order (a region without one is left out).

    ``check_result_pk`` read backwards from now; the LIMIT (a few slots of every region)
    stops the scan early, so it costs the same on day 1 and day 90. A region silent for
    longer than those slots shows its newest check among them or none.
    """
    rows = _fetch(
        "SELECT region, scheduled_at, ok, duration_ms, failure, error FROM check_result "
        "WHERE monitor_id = %s AND scheduled_at >= %s AND scheduled_at <= %s "
        "ORDER BY scheduled_at DESC LIMIT %s",
        [monitor_id, naive_utc(now - DAY), naive_utc(now), 5 * max(len(regions), 1)],
    )
    newest: dict[str, RegionLatest] = {}
    for region, at, ok, duration, failure, error in rows:
        newest.setdefault(
            region, RegionLatest(region, as_utc(at), bool(ok), int(duration), failure, error)
        )
    return [newest[region] for region in regions if region in newest]


def tls_expiry(*, monitor_id: int, now: dt.datetime) -> dt.datetime | None:
    """The certificate expiry seen by the latest check that saw one in the last day.

    ``check_result_pk`` read backwards over one day's partitions.
    """
    rows = _fetch(
        "SELECT tls_expires_at FROM check_result WHERE monitor_id = %s AND scheduled_at >= %s "
        "AND tls_expires_at IS NOT NULL ORDER BY scheduled_at DESC LIMIT 1",
        [monitor_id, naive_utc(now - DAY)],
    )
    return as_utc(rows[0][0]) if rows else None


# --- Overview: one page of monitors at once ------------------------------------------


def monitor_summaries(
    *, monitors: Sequence[Monitor], now: dt.datetime
) -> dict[int, MonitorSummary]:
    """Uptime over the last 24 h, 7 d and 30 d, last latency and 24 h sparkline for a
    page of monitors, in two queries whatever the page size (no query per monitor):

    1. ``monitor_rollup_summary`` by its PK (``telemetry.summary``): one small row per
       monitor, kept by the rollup fold, instead of 50+ rollup rows, so a page costs
       the same with a cold buffer pool;
    2. ``check_result_pk`` point lookups of each monitor's last applied check
       (``Monitor.last_checked_at`` is that check's scheduled_at).

    Uptimes are percentages, None without checks, over whole hours (24 h: the current
    hour and the 23 before it) and whole UTC days (7 d, 30 d: today and the days
    before it), as the summary keeps them; ``window_summary`` has the exact windows.
    The sparkline is the mean latency (ms) of each of the 24 whole hours before the
    current one, oldest first.
    """
    found = summaries_read(monitor_ids=[m.pk for m in monitors])
    summaries = {}
    for monitor in monitors:
        kept = found[monitor.pk]
        summaries[monitor.pk] = MonitorSummary(
            monitor.pk,
            uptime_24h=kept.uptime(window="24h", now=now),
            uptime_7d=kept.uptime(window="7d", now=now),
            uptime_30d=kept.uptime(window="30d", now=now),
            sparkline=[p.avg_latency_ms for p in kept.hourly(now=now, count=25)[:-1]],
        )
    _add_last_check(summaries, [m for m in monitors if m.last_checked_at])
    return summaries


def _add_last_check(summaries: dict[int, MonitorSummary], monitors: Sequence[Monitor]) -> None:
    for monitor_id, (duration_ms, ok) in last_checks(monitors=monitors).items():
        summaries[monitor_id].last_latency_ms = duration_ms
        summaries[monitor_id].last_ok = ok


def last_checks(*, monitors: Sequence[Monitor]) -> dict[int, tuple[int, bool]]:
    """(duration ms, ok) of each monitor's last applied check, by monitor id.

    ``check_result_pk`` point lookups of (id, ``Monitor.last_checked_at``), which is that
    check's scheduled_at; a check whose live state moved before ingest stored it is
    simply absent until then.
    """
    pairs = [(m.pk, naive_utc(m.last_checked_at)) for m in monitors if m.last_checked_at]
    if not pairs:
        return {}
    # The IN on scheduled_at alone lets MySQL prune to the partitions of those times;
    # the row-constructor IN then picks each monitor's own row.
    times = sorted({t for _, t in pairs})
    rows = _fetch(
        "SELECT monitor_id, duration_ms, ok FROM check_result "  # noqa: S608
        f"WHERE scheduled_at IN ({', '.join(['%s'] * len(times))}) "
        f"AND (monitor_id, scheduled_at) IN ({', '.join(['(%s, %s)'] * len(pairs))})",
        [*times, *(value for pair in pairs for value in pair)],
    )
    return {int(pk): (int(duration_ms), bool(ok)) for pk, duration_ms, ok in rows}


def _percent(checks: int, failures: int) -> float | None:
    return None if not checks else 100.0 * (checks - failures) / checks


# --- Fleet ---------------------------------------------------------------------------


def status_counts(*, project_ids: list[int] | None) -> dict[str, int]:
    """Monitors per live status, for some projects or (None) the whole fleet.

    ``monitor_project_status_idx`` (project, status): an index-only GROUP BY.
    """
    where = ""
    if project_ids is not None:
        # Only ints are formatted into the SQL; no project at all matches nothing.
        where = f"WHERE project_id IN ({sql_ids(project_ids) or 'NULL'})"
    rows = _fetch(
        f"SELECT status, COUNT(*) FROM monitors_monitor {where} GROUP BY status",  # noqa: S608
        [],
    )
    return {status: int(count) for status, count in rows}


def fleet_overview(
    *, project_ids: list[int] | None, now: dt.datetime, limit: int = 5
) -> FleetOverview:
    """Status counts and the worst monitors by uptime and mean latency since yesterday
    00:00 UTC, for some projects (``project_ids``) or the whole fleet (None, staff).

    Status counts: ``status_counts``.
    Worst lists: each monitor's ``monitor_rollup_summary`` row by its PK (yesterday's
    and today's slots), after the projects' monitor ids from ``monitor_project_status_idx``.
    This still touches every monitor of the projects, so the dashboard caches it.
    """
    monitors = Monitor.objects.order_by()
    if project_ids is not None:
        monitors = monitors.filter(project_id__in=project_ids)
    names = dict(monitors.values_list("pk", "name"))
    today = naive_utc(now).date()
    uptimes, latencies = [], []
    totals = summaries_day_totals(monitor_ids=names, today=today, count=2)
    for pk, (checks, failures, latency_sum) in totals.items():
        if failures and checks:
            uptimes.append((pk, names[pk], 100.0 * (checks - failures) / checks))
        if checks - failures:
            latencies.append((pk, names[pk], latency_sum / (checks - failures)))
    return FleetOverview(
        status_counts=status_counts(project_ids=project_ids),
        worst_uptime=sorted(uptimes, key=lambda item: (item[2], item[0]))[:limit],
        slowest=sorted(latencies, key=lambda item: (-item[2], item[0]))[:limit],
    )
