from __future__ import annotations

import datetime as dt

import pytest

from monitors.models import Monitor
from monitors.state import monitors_apply_results
from telemetry.records import CheckResult, FailureKind
from tests.factories import MonitorFactory

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)


def result(monitor: Monitor, minute: int, ok: bool) -> CheckResult:
    at = T0 + dt.timedelta(minutes=minute)
    return CheckResult(
        monitor_id=monitor.pk,
        scheduled_at=at,
        started_at=at,
        duration_ms=10,
        ok=ok,
        status_code=200 if ok else 500,
        failure=None if ok else FailureKind.STATUS,
    )


def test_one_failure_does_not_mark_a_monitor_down_but_two_do():
    monitor = MonitorFactory(status=Monitor.Status.UP)

    assert monitors_apply_results(results=[result(monitor, 0, ok=False)]) == []
    monitor.refresh_from_db()
    assert (monitor.status, monitor.consecutive_failures) == (Monitor.Status.UP, 1)

    changes = monitors_apply_results(results=[result(monitor, 1, ok=False)])
    monitor.refresh_from_db()
    assert monitor.status == Monitor.Status.DOWN
    assert [(c.old_status, c.new_status) for c in changes] == [("up", "down")]
    assert monitor.last_checked_at == T0 + dt.timedelta(minutes=1)


def test_a_batch_updates_many_monitors_and_recovers_with_one_success():
    down = MonitorFactory(status=Monitor.Status.DOWN, consecutive_failures=5)
    pending = MonitorFactory()

    changes = monitors_apply_results(results=[result(down, 0, True), result(pending, 0, True)])

    assert sorted((c.monitor_id, c.new_status) for c in changes) == sorted(
        [(down.pk, "up"), (pending.pk, "up")]
    )
    down.refresh_from_db()
    assert (down.consecutive_failures, down.consecutive_successes) == (0, 1)


def test_late_results_and_deleted_monitors_do_not_move_the_state():
    monitor = MonitorFactory(status=Monitor.Status.UP, last_checked_at=T0 + dt.timedelta(minutes=5))
    ghost = MonitorFactory()
    ghost_result = result(ghost, 6, False)
    ghost.delete()

    changes = monitors_apply_results(results=[result(monitor, 4, False), ghost_result])

    monitor.refresh_from_db()
    assert changes == []
    assert monitor.consecutive_failures == 0


def test_a_paused_monitor_stays_paused():
    monitor = MonitorFactory(enabled=False, status=Monitor.Status.PAUSED)

    monitors_apply_results(results=[result(monitor, 0, False), result(monitor, 1, False)])

    monitor.refresh_from_db()
    assert monitor.status == Monitor.Status.PAUSED
    assert monitor.consecutive_failures == 2


def test_per_monitor_thresholds_decide_confirmation_and_recovery():
    monitor = MonitorFactory(status=Monitor.Status.UP, confirm_failures=3, recover_successes=2)

    monitors_apply_results(results=[result(monitor, m, ok=False) for m in range(2)])
    monitor.refresh_from_db()
    assert monitor.status == Monitor.Status.UP

    monitors_apply_results(results=[result(monitor, 2, ok=False)])
    monitor.refresh_from_db()
    assert monitor.status == Monitor.Status.DOWN

    monitors_apply_results(results=[result(monitor, 3, ok=True)])
    monitor.refresh_from_db()
    assert monitor.status == Monitor.Status.DOWN
    monitors_apply_results(results=[result(monitor, 4, ok=True)])
    monitor.refresh_from_db()
    assert monitor.status == Monitor.Status.UP
