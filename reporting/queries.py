"""The read side: one raw-SQL function per question the dashboard and the API ask.

Every query names one monitor (or one page of monitors) and a time range, so it is a
primary-key range scan pruned to the partitions of the range:

- ``check_result`` (PK ``check_result_pk`` = monitor_id, scheduled_at; daily partitions)
  for the last few hours at 5-minute resolution and the raw check list;
- ``check_rollup_hourly`` (PK monitor_id, hour_start; monthly partitions) for windows up
  to 7 days and hourly series;
- ``check_rollup_daily`` (PK monitor_id, day; monthly partitions) for 30 days and more,
  daily series and the 90-day uptime bars.

Latency figures cover successful checks only (a timeout is not a slow answer), as the
rollups do. Percentiles from rollups are the upper bound of the histogram bucket that
holds them (``telemetry.histogram``); from raw rows (5-minute buckets) they are exact
(nearest rank).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connection

from core.time import as_utc, naive_utc
from monitors.models import Monitor
from telemetry.histogram import BUCKET_BOUNDS_MS, BUCKET_COLUMNS, percentile, percentile_index

HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)

WINDOWS: dict[str, dt.timedelta] = {
    "24h": dt.timedelta(hours=24),
    "7d": dt.timedelta(days=7),
    "30d": dt.timedelta(days=30),
    "90d": dt.timedelta(days=90),
    "1y": dt.timedelta(days=365),
}
# Windows longer than this read the daily rollups (whole UTC days): a week is 8 rows
# instead of 168, a year 366 instead of 8,760, and the daily table is small enough to
# stay in the buffer pool.
LONGEST_HOURLY_WINDOW = dt.timedelta(days=1)
QUANTILES = (0.5, 0.95, 0.99)
HISTOGRAM_SUMS = ", ".join(f"SUM({column})" for column in BUCKET_COLUMNS)
HISTOGRAM_COLUMNS = ", ".join(BUCKET_COLUMNS)


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


@dataclass(slots=True)
class MonitorSummary:
    """What the overview shows for one monitor."""

    monitor_id: int
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


def floor_hour(moment: dt.datetime) -> dt.datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


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
    """p50, p95 and p99 of bucket counts in one walk: the rule of
    ``telemetry.histogram.percentile_ms`` (upper bound of the bucket holding the rank),
    three times cheaper, which matters for the 720 hours of a 30-day series."""
    total = sum(counts)
    if not total:
        return (None,) * len(QUANTILES)
    found: list[int | None] = []
    running, index = 0, -1
    for quantile in QUANTILES:
        wanted = percentile_index(total, quantile)
        while running <= wanted:
            index += 1
            running += counts[index]
        found.append(BUCKET_BOUNDS_MS[min(max(index, 0), len(BUCKET_BOUNDS_MS) - 1)])
    return tuple(found)


def _clamp(value: int | None, low: Any, high: Any) -> int | None:
    """A bucket bound never beyond what was seen: p99 of checks all at 120 ms is 120,
    not the bucket's 150."""
    if value is None or low is None or high is None:
        return value
    return max(int(low), min(value, int(high)))


def window_summary(*, monitor_id: int, since: dt.datetime, until: dt.datetime) -> LatencyStats:
    """Uptime and latency (avg, p50, p95, p99, min, max) of one monitor over a window.

    Up to a day: ``check_rollup_hourly`` by ``check_rollup_hourly_pk`` (monitor_id,
    hour_start), hours from ``floor_hour(since)``; longer: ``check_rollup_daily`` by
    ``check_rollup_daily_pk`` (monitor_id, day), whole UTC days from ``since``'s day. At
    most 25 or 366 rows, summed in MySQL; the histogram columns add up across periods.
    """
    if until - since <= LONGEST_HOURLY_WINDOW:
        table, column = "check_rollup_hourly", "hour_start"
        low: dt.datetime | dt.date = naive_utc(floor_hour(since))
        high: dt.datetime | dt.date = naive_utc(until)
    else:
        table, column = "check_rollup_daily", "day"
        low, high = naive_utc(since).date(), naive_utc(until).date()
    rows = _fetch(
        f"SELECT SUM(checks), SUM(failures), SUM(latency_sum_ms), MIN(latency_min_ms), "  # noqa: S608
        f"MAX(latency_max_ms), {HISTOGRAM_SUMS} FROM {table} "
        f"WHERE monitor_id = %s AND {column} >= %s AND {column} <= %s",
        [monitor_id, low, high],
    )
    return _stats_from_rollup(as_utc(since), rows[0])


def uptime(*, monitor_id: int, window: str, now: dt.datetime) -> float | None:
    """Uptime % over a named window (24h, 7d, 30d, 90d, 1y); see ``window_summary``
    for the rollup each window reads. None when there were no checks."""
    return window_summary(
        monitor_id=monitor_id, since=now - WINDOWS[window], until=now
    ).uptime_percent


# --- Series --------------------------------------------------------------------------


def latency_series(
    *, monitor_id: int, bucket: str, since: dt.datetime, until: dt.datetime
) -> list[LatencyStats]:
    """Latency per bucket (avg, p50, p95, p99, min, max, plus checks and failures),
    oldest first; buckets without checks are left out.

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
    days without checks have ``checks == 0`` (shown as "no data").

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


def recent_checks(
    *, monitor_id: int, before: dt.datetime | None = None, limit: int = 50
) -> list[CheckRow]:
    """The monitor's checks newest first, older than ``before`` (keyset pagination:
    the next page starts below the last row's ``scheduled_at``, never OFFSET).

    ``check_result_pk`` (monitor_id, scheduled_at) read backwards; the LIMIT stops the
    scan after ``limit`` rows, so a page costs the same on day 1 and day 90.
    """
    condition = ""
    params: list[Any] = [monitor_id]
    if before is not None:
        condition = " AND scheduled_at < %s"
        params.append(naive_utc(before))
    rows = _fetch(
        "SELECT scheduled_at, started_at, ok, status_code, duration_ms, failure, error, "  # noqa: S608
        f"tls_expires_at FROM check_result WHERE monitor_id = %s{condition} "
        "ORDER BY scheduled_at DESC LIMIT %s",
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
        )
        for r in rows
    ]


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
    """Uptime 24h/7d/30d, last latency and 24h sparkline for a page of monitors, in
    three queries whatever the page size (no query per monitor):

    1. ``check_rollup_hourly`` by its PK over the last 24 hours, one row per hour (the
       sparkline and the 24 h uptime);
    2. ``check_rollup_daily`` by its PK over 30 days, grouped into the 7-day and 30-day
       sums (whole UTC days, as ``window_summary`` counts them);
    3. ``check_result_pk`` point lookups of each monitor's last applied check
       (``Monitor.last_checked_at`` is that check's scheduled_at).
    """
    summaries = {m.pk: MonitorSummary(m.pk, sparkline=[None] * 24) for m in monitors}
    if not summaries:
        return summaries
    ids = list(summaries)
    _add_hourly(summaries, ids, now)
    _add_daily(summaries, ids, now)
    _add_last_check(summaries, [m for m in monitors if m.last_checked_at])
    return summaries


def _add_hourly(summaries: dict[int, MonitorSummary], ids: list[int], now: dt.datetime) -> None:
    day_start = naive_utc(floor_hour(now - WINDOWS["24h"]))
    marks = ", ".join(["%s"] * len(ids))
    rows = _fetch(
        "SELECT monitor_id, hour_start, checks, failures, latency_sum_ms "  # noqa: S608
        f"FROM check_rollup_hourly WHERE monitor_id IN ({marks}) AND hour_start >= %s",
        [*ids, day_start],
    )
    totals: dict[int, list[int]] = {pk: [0, 0] for pk in ids}
    for monitor_id, hour, checks, failures, latency_sum in rows:
        totals[monitor_id][0] += checks
        totals[monitor_id][1] += failures
        slot = int((hour - day_start) / HOUR)
        if 0 <= slot < 24 and checks > failures:
            summaries[monitor_id].sparkline[slot] = float(latency_sum) / (checks - failures)
    for pk, (checks, failures) in totals.items():
        summaries[pk].uptime_24h = _percent(checks, failures)


def _add_daily(summaries: dict[int, MonitorSummary], ids: list[int], now: dt.datetime) -> None:
    week = naive_utc(now - WINDOWS["7d"]).date()
    marks = ", ".join(["%s"] * len(ids))
    rows = _fetch(
        "SELECT monitor_id, SUM(IF(day >= %s, checks, 0)), SUM(IF(day >= %s, failures, 0)), "  # noqa: S608
        "SUM(checks), SUM(failures) FROM check_rollup_daily "
        f"WHERE monitor_id IN ({marks}) AND day >= %s GROUP BY monitor_id",
        [week, week, *ids, naive_utc(now - WINDOWS["30d"]).date()],
    )
    for monitor_id, week_checks, week_failures, checks, failures in rows:
        summaries[monitor_id].uptime_7d = _percent(int(week_checks), int(week_failures))
        summaries[monitor_id].uptime_30d = _percent(int(checks), int(failures))


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


def status_counts(*, owner_id: int | None) -> dict[str, int]:
    """Monitors per live status, for one owner or (None) the whole fleet.

    ``monitor_owner_status_idx`` (owner, status): an index-only GROUP BY.
    """
    owner_filter, params = ("WHERE owner_id = %s", [owner_id]) if owner_id else ("", [])
    rows = _fetch(
        f"SELECT status, COUNT(*) FROM monitors_monitor {owner_filter} GROUP BY status",  # noqa: S608
        params,
    )
    return {status: int(count) for status, count in rows}


def fleet_overview(*, owner_id: int | None, now: dt.datetime, limit: int = 5) -> FleetOverview:
    """Status counts and the worst monitors by 24 h uptime and mean latency, for one
    owner (``owner_id``) or the whole fleet (None, staff).

    Status counts: ``status_counts``.
    Worst lists, since yesterday 00:00 UTC: ``check_rollup_daily`` joined from the
    owner's monitors, two rows per monitor by its PK (the daily table stays in the
    buffer pool; the hourly one would be 24 random reads per monitor). This still
    touches every monitor of the owner, so the dashboard caches it.
    """
    owner_filter, params = ("WHERE m.owner_id = %s", [owner_id]) if owner_id else ("", [])
    rows = _fetch(
        "SELECT m.id, m.name, SUM(r.checks), SUM(r.failures), SUM(r.latency_sum_ms) "  # noqa: S608
        "FROM monitors_monitor m JOIN check_rollup_daily r ON r.monitor_id = m.id "
        f"AND r.day >= %s {owner_filter} "
        "GROUP BY m.id, m.name",
        [naive_utc(now).date() - DAY, *params],
    )
    uptimes, latencies = [], []
    for pk, name, checks, failures, latency_sum in rows:
        checks, failures = int(checks), int(failures)
        if failures and checks:
            uptimes.append((pk, name, 100.0 * (checks - failures) / checks))
        if checks - failures:
            latencies.append((pk, name, float(latency_sum) / (checks - failures)))
    return FleetOverview(
        status_counts=status_counts(owner_id=owner_id),
        worst_uptime=sorted(uptimes, key=lambda item: (item[2], item[0]))[:limit],
        slowest=sorted(latencies, key=lambda item: (-item[2], item[0]))[:limit],
    )
