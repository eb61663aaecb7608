from __future__ import annotations

import datetime as dt
import time

import pytest
from django.db import connection

from telemetry import summary as summary_module
from telemetry.records import FailureKind
from telemetry.rollups import rollups_fold
from telemetry.summary import DAYS, HOURS, Ring, summaries_read, summaries_rebuild
from tests.factories import CheckResultFactory, MonitorFactory
from tests.telemetry.conftest import store
from tests.telemetry.test_ingest import make_results

pytestmark = pytest.mark.usefixtures("telemetry_tables")


def expected_days(results, today, count):
    """(checks, failures) per UTC day, computed from the results themselves."""
    days: dict[dt.date, tuple[int, int]] = {}
    for r in results:
        day = r.scheduled_at.astimezone(dt.UTC).date()
        checks, failures = days.get(day, (0, 0))
        days[day] = (checks + 1, failures + (not r.ok))
    first = today - dt.timedelta(days=count - 1)
    return [days.get(first + dt.timedelta(days=i), (0, 0)) for i in range(count)]


def test_it_keeps_each_monitors_summary_where_the_rollups_are_folded(buffer):
    monitors = MonitorFactory.create_batch(3)
    now = dt.datetime.now(dt.UTC)
    batches = [
        make_results(monitors, 200, seed=n, start=now - dt.timedelta(days=n * 3, hours=n))
        for n in range(4)
    ]
    for batch in batches:
        store(batch)
        rollups_fold()

    summaries = summaries_read(monitor_ids=[m.pk for m in monitors])
    everything = [r for batch in batches for r in batch]
    for monitor in monitors:
        mine = [r for r in everything if r.monitor_id == monitor.pk]
        bars = summaries[monitor.pk].daily(today=now.date(), count=90)
        assert [(b.checks, b.failures) for b in bars] == expected_days(mine, now.date(), 90)
        assert sum(b.checks for b in bars) == len(mine)


def test_a_rebuild_from_the_rollups_equals_what_the_fold_kept(buffer):
    monitors = MonitorFactory.create_batch(2)
    now = dt.datetime.now(dt.UTC)
    for n in range(3):
        store(make_results(monitors, 150, seed=n, start=now - dt.timedelta(days=n * 20)))
        rollups_fold()
    ids = [m.pk for m in monitors]
    folded = summaries_read(monitor_ids=ids)

    assert summaries_rebuild(monitor_ids=ids, now=now) == 2
    rebuilt = summaries_read(monitor_ids=ids)
    for pk in ids:
        assert rebuilt[pk].daily(today=now.date(), count=DAYS) == folded[pk].daily(
            today=now.date(), count=DAYS
        )
        assert rebuilt[pk].hourly(now=now, count=HOURS) == folded[pk].hourly(now=now, count=HOURS)
        assert sum(p.checks for p in rebuilt[pk].daily(today=now.date(), count=DAYS)) == 225


def test_a_ring_drops_days_older_than_it_holds_and_moves_forward_with_new_ones():
    ring = Ring(3)
    ring.add(10, 5, 1, 100)
    ring.add(12, 2, 0, 40)
    ring.add(9, 7, 7, 0)  # older than 10..12: dropped
    assert [ring.slot(i) for i in (9, 10, 11, 12)] == [
        (0, 0, 0),
        (5, 1, 100),
        (0, 0, 0),
        (2, 0, 40),
    ]
    ring.add(14, 1, 0, 9)
    assert [ring.slot(i) for i in (11, 12, 13, 14)] == [(0, 0, 0), (2, 0, 40), (0, 0, 0), (1, 0, 9)]
    assert Ring(3, ring.pack()).slot(12) == (2, 0, 40)
    assert Ring(3, b"garbage").slot(12) == (0, 0, 0)  # another layout: starts empty


def test_a_monitor_without_a_summary_reads_as_no_data(db):
    summary = summaries_read(monitor_ids=[987654])[987654]
    now = dt.datetime.now(dt.UTC)
    assert summary.uptime(window="24h", now=now) is None
    assert all(p.checks == 0 for p in summary.daily(today=now.date()))


def test_folds_within_the_current_hour_add_in_place_and_late_results_still_count(
    buffer, monkeypatch
):
    monitor = MonitorFactory()
    rewritten: list[list[int]] = []
    rewrite = summary_module._rewrite

    def spying_rewrite(cursor, deltas):
        rewritten.append(sorted(deltas))
        return rewrite(cursor, deltas)

    monkeypatch.setattr(summary_module, "_rewrite", spying_rewrite)
    hour = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    stored = []

    def fold(at, ok=True, duration=100):
        result = CheckResultFactory(
            monitor_id=monitor.pk,
            scheduled_at=at,
            ok=ok,
            duration_ms=duration,
            failure=None if ok else FailureKind.TIMEOUT,
        )
        store([result])
        rollups_fold()
        stored.append(result)

    fold(hour + dt.timedelta(seconds=1))  # a new row: written whole
    fold(hour + dt.timedelta(seconds=2), ok=False)  # same hour: counters in place
    fold(hour + dt.timedelta(seconds=3), duration=300)
    fold(hour - dt.timedelta(hours=2))  # late: an older hour, rewritten into the ring
    assert rewritten == [[monitor.pk], [], [], [monitor.pk]]

    summary = summaries_read(monitor_ids=[monitor.pk])[monitor.pk]
    now = hour + dt.timedelta(minutes=5)
    slots = summary.hour_slots(now=now, count=3)
    assert slots == [(1, 0, 100), (0, 0, 0), (3, 1, 400)]
    today = [p for p in summary.daily(today=now.date(), count=2)]
    assert sum(p.checks for p in today) == 4 and sum(p.failures for p in today) == 1
    assert summary.uptime(window="24h", now=now) == 75.0
    assert summary.last_latency_ms(now=now) == 200.0


def pending_rows() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM check_summary_pending")
        return int(cursor.fetchone()[0])


def total_checks(pk: int, now: dt.datetime) -> int:
    days = summaries_read(monitor_ids=[pk])[pk].daily(today=now.date(), count=DAYS)
    return sum(p.checks for p in days)


def test_folds_within_the_period_leave_the_summaries_for_one_fold_of_them_all(
    buffer, settings, monkeypatch
):
    settings.TELEMETRY_SUMMARY_FOLD_SECONDS = 300
    monkeypatch.setattr(summary_module, "_clock", summary_module._FoldClock())
    monitor = MonitorFactory()
    now = dt.datetime.now(dt.UTC)
    batches = [
        make_results([monitor], 40, seed=n, start=now - dt.timedelta(hours=n)) for n in (1, 2, 3)
    ]
    store(batches[0])
    rollups_fold()  # this process's first fold: due
    for batch in batches[1:]:
        store(batch)
        rollups_fold()

    assert total_checks(monitor.pk, now) == 40  # the later folds wait
    assert pending_rows() == 2

    summary_module._clock.last = time.monotonic() - 301
    assert rollups_fold() == 0  # an idle fold: nothing for the rollups, the summaries' turn

    assert pending_rows() == 0
    folded = summaries_read(monitor_ids=[monitor.pk])[monitor.pk]
    everything = [r for batch in batches for r in batch]
    bars = folded.daily(today=now.date(), count=90)
    assert [(b.checks, b.failures) for b in bars] == expected_days(everything, now.date(), 90)
    assert total_checks(monitor.pk, now) == 120


def test_a_rebuild_takes_what_waits_for_the_summaries_once(buffer, settings, monkeypatch):
    settings.TELEMETRY_SUMMARY_FOLD_SECONDS = 300
    monkeypatch.setattr(summary_module, "_clock", summary_module._FoldClock())
    rebuilt, untouched = MonitorFactory.create_batch(2)
    now = dt.datetime.now(dt.UTC)
    store(make_results([rebuilt, untouched], 20, seed=1, start=now - dt.timedelta(hours=2)))
    rollups_fold()
    store(make_results([rebuilt, untouched], 30, seed=2, start=now - dt.timedelta(hours=1)))
    rollups_fold()
    assert pending_rows() == 1

    summaries_rebuild(monitor_ids=[rebuilt.pk], now=now)

    assert pending_rows() == 0
    assert (total_checks(rebuilt.pk, now), total_checks(untouched.pk, now)) == (25, 25)
