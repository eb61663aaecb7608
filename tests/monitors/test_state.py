from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection

from core.db import IN_LIST_MAX, ascending_chunks
from monitors.models import Monitor
from monitors.state import LiveState, monitors_apply_results, state_replay
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


# Outside a transaction, as a direct call is; ingest's own retry is tested with ingest.
@pytest.mark.django_db(transaction=True)
def test_a_live_state_update_chosen_as_a_deadlock_victim_is_applied_again(monkeypatch):
    from django.db import OperationalError

    from monitors import state

    monitor = MonitorFactory(status=Monitor.Status.UP)
    original, calls = state._lock_states, []

    def deadlock_once(monitor_ids):
        calls.append(monitor_ids)
        if len(calls) == 1:
            raise OperationalError(1213, "Deadlock found when trying to get lock")
        return original(monitor_ids)

    monkeypatch.setattr(state, "_lock_states", deadlock_once)

    monitors_apply_results(results=[result(monitor, 0, ok=False)])

    assert len(calls) == 2
    monitor.refresh_from_db()
    assert monitor.consecutive_failures == 1  # applied once, not twice


@pytest.mark.parametrize("count", [IN_LIST_MAX, 1000])  # 1000: the batch size maximum
def test_live_state_rows_are_locked_along_the_primary_key(count):
    """MariaDB turns an IN list of 1,000 values into a table of values and locks rows in
    that table's order; every locking statement stays under that, so locks go by id."""
    for chunk in ascending_chunks(range(count, 0, -1)):
        assert len(chunk) < 1000 and chunk == sorted(chunk)
        with connection.cursor() as cursor:
            cursor.execute(
                f"EXPLAIN SELECT id FROM {Monitor._meta.db_table} "
                f"WHERE id IN ({', '.join(['%s'] * len(chunk))}) ORDER BY id FOR UPDATE",
                chunk,
            )
            names = [c[0] for c in cursor.description]
            plans = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        assert [(p["table"], p["key"]) for p in plans] == [(Monitor._meta.db_table, "PRIMARY")]


def outcomes(monitor: Monitor, pattern: str, *, start: int = 0) -> list[str]:
    """Apply one check a minute, "F" failed and "P" passed; the status after each."""
    seen = []
    for offset, mark in enumerate(pattern):
        monitors_apply_results(results=[result(monitor, start + offset, ok=mark == "P")])
        monitor.refresh_from_db()
        seen.append(monitor.status)
    return seen


@pytest.mark.parametrize(
    ("pattern", "down_at"),
    [
        ("FPFPF", 4),  # every other check: 3 of the last 5 by the fifth
        ("FPPFPPF", None),  # one in three: never 3 of 5
        ("FFP", 1),  # two in a row, as before
        ("FPFFP", 3),  # two in a row again
        ("PFPFPPPF", None),  # failures spread out: at most 2 of any 5
        ("FPFPPF", None),  # 2 of the last 5 at the sixth check
    ],
)
def test_failures_that_are_not_in_a_row_still_confirm_an_outage(pattern, down_at):
    monitor = MonitorFactory(status=Monitor.Status.UP)

    statuses = outcomes(monitor, pattern)

    first_down = statuses.index("down") if "down" in statuses else None
    assert first_down == down_at


def test_the_window_rule_never_confirms_sooner_than_a_more_tolerant_in_a_row_rule():
    monitor = MonitorFactory(status=Monitor.Status.UP, confirm_failures=5)

    assert outcomes(monitor, "FFFF")[-1] == "up"
    assert outcomes(monitor, "F", start=4)[-1] == "down"


def test_the_window_can_be_tuned_per_monitor():
    monitor = MonitorFactory(status=Monitor.Status.UP, confirm_window=10, confirm_window_failures=4)

    assert outcomes(monitor, "FPFPFP")[-1] == "up"  # 3 of 10
    assert outcomes(monitor, "F", start=6)[-1] == "down"  # 4 of 10


def test_the_window_threshold_cannot_exceed_the_window(user):
    from django.core.exceptions import ValidationError

    from monitors.services import monitor_create

    with pytest.raises(ValidationError) as excinfo:
        monitor_create(
            owner=user,
            name="x",
            url="https://x.example.test/",
            confirm_window=3,
            confirm_window_failures=4,
        )

    assert "confirm_window_failures" in excinfo.value.message_dict


def test_a_recovery_starts_the_count_afresh():
    monitor = MonitorFactory(status=Monitor.Status.UP)

    # Down (two in a row), up again, then one blip: the outage's failures no longer count.
    assert outcomes(monitor, "FFPF") == ["up", "down", "up", "up"]


def test_a_replay_of_the_rows_in_any_order_gives_what_applying_them_in_order_gave():
    monitor = MonitorFactory()
    rows = [result(monitor, m, ok=mark == "P") for m, mark in enumerate("FPFFPFPFPPFF")]
    applied = [change for row in rows for change in monitors_apply_results(results=[row])]

    state, changes = state_replay(LiveState("pending", 0, 0, None), reversed(rows))

    monitor.refresh_from_db()
    assert state == LiveState(
        monitor.status,
        monitor.consecutive_failures,
        monitor.consecutive_successes,
        monitor.last_checked_at,
        recent_failures=monitor.recent_failures,
    )
    assert [(c.new_status, c.result.scheduled_at) for c in changes] == [
        (c.new_status, c.result.scheduled_at) for c in applied
    ]
    assert [c.new_status for c in changes] == ["up", "down", "up", "down"]


def test_a_replay_skips_results_at_or_before_the_last_check():
    monitor = MonitorFactory.build(pk=7)
    start = LiveState("up", 0, 3, T0 + dt.timedelta(minutes=1))

    state, changes = state_replay(start, [result(monitor, m, ok=False) for m in (0, 1, 2)])

    assert (state.consecutive_failures, state.last_checked_at) == (1, T0 + dt.timedelta(minutes=2))
    assert changes == []
