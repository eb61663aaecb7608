from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from tests.factories import MonitorFactory
from tests.reporting.rows import make_results, store_results


@pytest.fixture
def now() -> dt.datetime:
    return timezone.now().replace(second=30, microsecond=0) - dt.timedelta(minutes=1)


@pytest.fixture
def history(db, user, now):
    """One monitor of ``user`` with 40 days of checks every 20 minutes and the last day
    every minute (about 4,300 rows), stored raw and rolled up."""
    monitor = MonitorFactory(owner=user, name="Shop", last_checked_at=None)
    old = make_results(
        monitor_id=monitor.pk,
        end=now - dt.timedelta(days=1),
        span=dt.timedelta(days=39),
        every=dt.timedelta(minutes=20),
        seed=7,
    )
    recent = make_results(
        monitor_id=monitor.pk,
        end=now + dt.timedelta(seconds=1),
        span=dt.timedelta(days=1),
        every=dt.timedelta(minutes=1),
        seed=8,
        failure_rate=0.1,
    )
    results = old + recent
    store_results(results)
    monitor.last_checked_at = results[-1].scheduled_at
    monitor.save(update_fields=["last_checked_at"])
    return monitor, results


@pytest.fixture
def at_17() -> dt.datetime:
    """A past moment at hh:17:00 UTC: windows ending then start and end mid-hour."""
    return timezone.now().replace(minute=17, second=0, microsecond=0) - dt.timedelta(hours=2)


@pytest.fixture
def edges(db, user, at_17):
    """One monitor of ``user`` with checks every 5 minutes for 33 days and every minute
    for the last 25 hours before ``at_17``, on a grid through ``at_17``: so there is a
    check at exactly ``at_17`` and at the start of every named window. Ten minutes of
    checks after ``at_17`` must never count. About 10,000 rows, raw and rolled up."""
    monitor = MonitorFactory(owner=user, name="Edges", last_checked_at=None)
    recent_span = dt.timedelta(hours=25)
    old = make_results(
        monitor_id=monitor.pk,
        end=at_17 - recent_span,
        span=dt.timedelta(days=33),
        every=dt.timedelta(minutes=5),
        seed=11,
    )
    recent = make_results(
        monitor_id=monitor.pk,
        end=at_17 + dt.timedelta(minutes=10),
        span=recent_span + dt.timedelta(minutes=10),
        every=dt.timedelta(minutes=1),
        seed=12,
        failure_rate=0.1,
    )
    results = old + recent
    store_results(results)
    monitor.last_checked_at = results[-1].scheduled_at
    monitor.save(update_fields=["last_checked_at"])
    return monitor, results
