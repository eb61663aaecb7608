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
