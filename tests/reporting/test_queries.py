"""Each reporting query against a naive Python computation over the same rows."""

from __future__ import annotations

import datetime as dt
import json
import math
import random
from collections import defaultdict

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from monitors.models import Monitor
from reporting import queries
from telemetry.histogram import BUCKET_COLUMNS, bucket_index, percentile_ms
from telemetry.records import CheckResult
from tests.factories import MonitorFactory
from tests.reporting.rows import make_results, store_results

pytestmark = pytest.mark.django_db


def naive_stats(rows: list[CheckResult], *, histogram: bool) -> dict[str, object]:
    passed = sorted(r.duration_ms for r in rows if r.ok)
    failures = sum(1 for r in rows if not r.ok)
    stats: dict[str, object] = {
        "checks": len(rows),
        "failures": failures,
        "avg_ms": sum(passed) / len(passed) if passed else None,
        "min_ms": passed[0] if passed else None,
        "max_ms": passed[-1] if passed else None,
    }
    for q, name in ((0.5, "p50_ms"), (0.95, "p95_ms"), (0.99, "p99_ms")):
        if not passed:
            stats[name] = None
        elif histogram:
            counts = [0] * len(BUCKET_COLUMNS)
            for duration in passed:
                counts[bucket_index(duration)] += 1
            value = percentile_ms(counts, q)
            assert value is not None
            stats[name] = max(passed[0], min(value, passed[-1]))
        else:
            stats[name] = passed[math.floor(q * (len(passed) - 1))]
    return stats


def as_dict(stats: queries.LatencyStats) -> dict[str, object]:
    return {
        name: getattr(stats, name)
        for name in (
            "checks",
            "failures",
            "avg_ms",
            "min_ms",
            "max_ms",
            "p50_ms",
            "p95_ms",
            "p99_ms",
        )
    }


def assert_same(got: dict[str, object], expected: dict[str, object]) -> None:
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        if isinstance(value, float):
            assert got[key] == pytest.approx(value), key
        else:
            assert got[key] == value, key


def floor_hour(moment: dt.datetime) -> dt.datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def in_window(results: list[CheckResult], since: dt.datetime, until: dt.datetime):
    """The naive reference: the checks scheduled in ``(since, until]``."""
    return [r for r in results if since < r.scheduled_at <= until]


@pytest.mark.parametrize("window", ["24h", "7d", "30d", "90d", "1y"])
def test_a_window_counts_exactly_the_checks_of_its_length_ending_now(edges, at_17, window):
    monitor, results = edges
    since = at_17 - queries.WINDOWS[window]
    rows = in_window(results, since, at_17)

    got = queries.window_summary(monitor_id=monitor.pk, since=since, until=at_17)

    # Not from the start of since's hour (25 hours for "24h") or day (8 days for "7d").
    assert_same(as_dict(got), naive_stats(rows, histogram=True))
    assert got.uptime_percent == pytest.approx(
        100 * (len(rows) - sum(not r.ok for r in rows)) / len(rows)
    )
    assert queries.uptime(monitor_id=monitor.pk, window=window, now=at_17) == pytest.approx(
        got.uptime_percent
    )


def test_a_check_at_the_start_of_a_window_is_outside_and_one_at_its_end_inside(edges, at_17):
    monitor, results = edges
    since = at_17 - queries.WINDOWS["24h"]
    assert {since, at_17} <= {r.scheduled_at for r in results}  # the fixture's grid

    got = queries.window_summary(monitor_id=monitor.pk, since=since, until=at_17)
    later = queries.window_summary(
        monitor_id=monitor.pk,
        since=since + dt.timedelta(minutes=1),
        until=at_17 + dt.timedelta(minutes=1),
    )

    assert got.checks == len(in_window(results, since, at_17)) == 24 * 60
    # A minute later the window has lost the check at since + 1 min and gained the one
    # at at_17 + 1 min: still 1,440 checks.
    assert later.checks == 24 * 60


def test_windows_of_any_length_at_any_moment_match_the_naive_count(edges, at_17):
    monitor, results = edges
    rng = random.Random(17)
    oldest = results[0].scheduled_at
    for _ in range(40):
        # Lengths from a minute to a month, ends anywhere in the history, to the
        # microsecond: raw-only windows, hours without days, days with hours on both sides.
        length = dt.timedelta(
            seconds=rng.randint(60, 31 * 86400), microseconds=rng.randint(0, 999999)
        )
        until = (
            at_17
            + dt.timedelta(minutes=10)
            - dt.timedelta(seconds=rng.uniform(0, (at_17 - oldest - length).total_seconds()))
        )
        since = until - length

        got = queries.window_summary(monitor_id=monitor.pk, since=since, until=until)

        assert_same(as_dict(got), naive_stats(in_window(results, since, until), histogram=True))


def test_it_answers_none_for_a_window_without_checks(db, user, now):
    monitor = MonitorFactory(owner=user)

    got = queries.window_summary(monitor_id=monitor.pk, since=now - dt.timedelta(days=1), until=now)

    assert (got.checks, got.uptime_percent, got.p95_ms) == (0, None, None)


def test_hourly_series_matches_the_rows_of_each_hour(history, now):
    monitor, results = history
    since, until = now - dt.timedelta(days=3), now
    by_hour: dict[dt.datetime, list[CheckResult]] = defaultdict(list)
    for r in results:
        if floor_hour(since) <= r.scheduled_at < until:
            by_hour[floor_hour(r.scheduled_at)].append(r)

    points = queries.latency_series(monitor_id=monitor.pk, bucket="1h", since=since, until=until)

    assert [p.start for p in points] == sorted(by_hour)
    for point in points:
        assert point.start is not None
        assert_same(as_dict(point), naive_stats(by_hour[point.start], histogram=True))


def test_daily_series_matches_the_rows_of_each_day(history, now):
    monitor, results = history
    since = now - dt.timedelta(days=35)
    by_day: dict[dt.date, list[CheckResult]] = defaultdict(list)
    for r in results:
        if since.date() <= r.scheduled_at.date() <= now.date():
            by_day[r.scheduled_at.date()].append(r)

    points = queries.latency_series(monitor_id=monitor.pk, bucket="1d", since=since, until=now)

    assert [p.start.date() for p in points if p.start] == sorted(by_day)
    for point in points:
        assert point.start is not None
        assert_same(as_dict(point), naive_stats(by_day[point.start.date()], histogram=True))


def test_five_minute_series_uses_exact_percentiles_of_raw_rows(history, now):
    monitor, results = history
    since, until = now - dt.timedelta(hours=6), now
    by_bucket: dict[int, list[CheckResult]] = defaultdict(list)
    for r in results:
        if since <= r.scheduled_at < until:
            by_bucket[int(r.scheduled_at.timestamp()) // 300 * 300].append(r)

    points = queries.latency_series(monitor_id=monitor.pk, bucket="5m", since=since, until=until)

    assert [int(p.start.timestamp()) for p in points if p.start] == sorted(by_bucket)
    for point in points:
        assert point.start is not None
        expected = naive_stats(by_bucket[int(point.start.timestamp())], histogram=False)
        assert_same(as_dict(point), expected)


def test_daily_bars_cover_ninety_days_with_gaps_as_no_data(history, now):
    monitor, results = history
    per_day: dict[dt.date, list[int]] = defaultdict(lambda: [0, 0])
    for r in results:
        per_day[r.scheduled_at.date()][0] += 1
        per_day[r.scheduled_at.date()][1] += not r.ok

    bars = queries.daily_uptime(monitor_id=monitor.pk, days=90, today=now.date())

    assert len(bars) == 90 and bars[-1].day == now.date()
    assert [b.day for b in bars] == [now.date() - dt.timedelta(days=89 - i) for i in range(90)]
    for bar in bars:
        assert [bar.checks, bar.failures] == per_day.get(bar.day, [0, 0])
    assert bars[0].uptime_percent is None  # 90 days ago: before the history starts


def test_recent_checks_page_newest_first_without_gaps_or_repeats(history):
    monitor, results = history
    expected = sorted(results, key=lambda r: r.scheduled_at, reverse=True)[:125]

    seen, before = [], None
    for _ in range(3):
        page = queries.recent_checks(monitor_id=monitor.pk, before=before, limit=50)
        seen += page
        before = page[-1].scheduled_at

    assert [c.scheduled_at for c in seen[:125]] == [r.scheduled_at for r in expected]
    failed = next(c for c in seen if not c.ok)
    assert (failed.failure, failed.error) == ("status", "expected 200-299, got 503")


def test_monitor_summaries_match_naive_figures_for_a_page(db, user, now):
    monitor = MonitorFactory(owner=user, name="Page")
    idle = MonitorFactory(owner=user, name="Idle")
    results = make_results(
        monitor_id=monitor.pk,
        end=now,
        span=dt.timedelta(days=33),
        every=dt.timedelta(minutes=7),
        seed=11,
        failure_rate=0.1,
    )
    store_results(results)
    monitor.last_checked_at = results[-1].scheduled_at
    monitor.save(update_fields=["last_checked_at"])

    summaries = queries.monitor_summaries(monitors=[monitor, idle], now=now)

    def uptime(since: dt.datetime) -> float:
        rows = [r for r in results if r.scheduled_at >= since]
        return 100 * (len(rows) - sum(not r.ok for r in rows)) / len(rows)

    got = summaries[monitor.pk]
    # Whole hours (the current one and the 23 before) and whole UTC days (today and
    # the days before), as the summary keeps them.
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    assert got.uptime_24h == pytest.approx(uptime(floor_hour(now) - dt.timedelta(hours=23)))
    assert got.uptime_7d == pytest.approx(uptime(midnight - dt.timedelta(days=6)))
    assert got.uptime_30d == pytest.approx(uptime(midnight - dt.timedelta(days=29)))
    assert got.last_latency_ms == results[-1].duration_ms
    # The sparkline: the 24 whole hours before the current one (a series, by hour).
    first_hour = floor_hour(now) - dt.timedelta(hours=24)
    in_first = [r.duration_ms for r in results if r.ok and floor_hour(r.scheduled_at) == first_hour]
    assert got.sparkline[0] == pytest.approx(sum(in_first) / len(in_first))
    assert len(got.sparkline) == 24
    assert summaries[idle.pk].uptime_24h is None and summaries[idle.pk].last_latency_ms is None


def test_monitor_summaries_take_two_queries_whatever_the_page_size(edges, at_17, user):
    monitor, _ = edges
    others = [MonitorFactory(owner=user) for _ in range(5)]

    with CaptureQueriesContext(connection) as one:
        queries.monitor_summaries(monitors=[monitor], now=at_17)
    with CaptureQueriesContext(connection) as six:
        queries.monitor_summaries(monitors=[monitor, *others], now=at_17)

    # The summaries by primary key, then the last-check point lookups.
    assert len(one) == len(six) == 2


def test_fleet_overview_counts_statuses_and_ranks_the_worst(db, user, other_user, now):
    good = MonitorFactory(owner=user, name="Good", status=Monitor.Status.UP)
    bad = MonitorFactory(owner=user, name="Bad", status=Monitor.Status.DOWN)
    MonitorFactory(owner=user, name="New")
    foreign = MonitorFactory(owner=other_user, status=Monitor.Status.DOWN)
    span, every = dt.timedelta(hours=20), dt.timedelta(minutes=10)
    rows = {
        good.pk: make_results(
            monitor_id=good.pk, end=now, span=span, every=every, failure_rate=0.01
        ),
        bad.pk: make_results(monitor_id=bad.pk, end=now, span=span, every=every, failure_rate=0.4),
        foreign.pk: make_results(
            monitor_id=foreign.pk, end=now, span=span, every=every, failure_rate=0.9
        ),
    }
    store_results([r for batch in rows.values() for r in batch])

    fleet = queries.fleet_overview(project_ids=[user.personal_project.pk], now=now)

    assert fleet.status_counts == {"up": 1, "down": 1, "pending": 1}
    assert fleet.worst_uptime[0][0] == bad.pk
    assert foreign.pk not in [pk for pk, _, _ in fleet.worst_uptime + fleet.slowest]
    bad_rows = rows[bad.pk]
    expected = 100 * sum(r.ok for r in bad_rows) / len(bad_rows)
    assert fleet.worst_uptime[0][2] == pytest.approx(expected)
    means = {
        pk: sum(r.duration_ms for r in batch if r.ok) / sum(r.ok for r in batch)
        for pk, batch in rows.items()
        if pk != foreign.pk
    }
    assert [pk for pk, _, _ in fleet.slowest] == sorted(means, key=lambda pk: -means[pk])


def explain(sql: str) -> dict:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN FORMAT=JSON {sql}")
        return json.loads(cursor.fetchone()[0])


@pytest.mark.parametrize(
    ("bucket", "span", "table", "most_partitions"),
    [
        ("5m", dt.timedelta(hours=30), "check_result", 3),
        ("1h", dt.timedelta(days=30), "check_rollup_hourly", 2),
    ],
)
def test_series_queries_prune_partitions_and_read_the_primary_key_in_order(
    history, now, bucket, span, table, most_partitions
):
    monitor, _ = history
    with CaptureQueriesContext(connection) as captured:
        queries.latency_series(monitor_id=monitor.pk, bucket=bucket, since=now - span, until=now)

    plan = explain(captured.captured_queries[-1]["sql"])
    access = plan["query_block"]["nested_loop"][0]["table"]

    assert access["table_name"] == table and access["key"] == "PRIMARY"
    assert access["used_key_parts"][0] == "monitor_id"
    assert 1 <= len(access["partitions"]) <= most_partitions + 1
    assert "filesort" not in json.dumps(plan)


def table_accesses(plan: dict) -> list[dict]:
    """Every table read of an ``EXPLAIN FORMAT=JSON`` plan (each part of a UNION)."""
    found: list[dict] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "table" and isinstance(value, dict) and "table_name" in value:
                    found.append(value)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(plan)
    return found


@pytest.mark.parametrize(
    ("window", "most_partitions"),
    [
        # Raw edges: one daily partition each. Hourly and daily rollups: monthly
        # partitions, at most the window's two months.
        ("24h", {"check_result": 2, "check_rollup_hourly": 2}),
        ("7d", {"check_result": 2, "check_rollup_hourly": 2, "check_rollup_daily": 2}),
        ("30d", {"check_result": 2, "check_rollup_hourly": 2, "check_rollup_daily": 2}),
    ],
)
def test_a_window_reads_only_the_partitions_of_its_spans_by_primary_key(
    edges, at_17, window, most_partitions
):
    monitor, _ = edges
    with CaptureQueriesContext(connection) as captured:
        queries.window_summary(
            monitor_id=monitor.pk, since=at_17 - queries.WINDOWS[window], until=at_17
        )

    plan = explain(captured.captured_queries[-1]["sql"])
    accesses = table_accesses(plan)

    assert sorted(a["table_name"] for a in accesses) == sorted(most_partitions)
    for access in accesses:
        assert access["key"] == "PRIMARY", access
        assert access["used_key_parts"][0] == "monitor_id"
        assert 1 <= len(access["partitions"]) <= most_partitions[access["table_name"]], access
    assert "filesort" not in json.dumps(plan)


def test_one_pass_percentiles_agree_with_the_telemetry_rule():
    rng = random.Random(3)
    for _ in range(500):
        counts = [rng.choice([0, 0, 1, 2, 7, 40]) for _ in BUCKET_COLUMNS]
        expected = tuple(
            percentile_ms(counts, q) if sum(counts) else None for q in queries.QUANTILES
        )
        assert queries.histogram_percentiles(counts) == expected
