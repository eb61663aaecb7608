"""A monitor's live state, moved forward by check results, in bulk.

Probe workers call ``monitors_apply_results`` once per batch: one locking SELECT
and one UPDATE for the whole batch, not one UPDATE per check. The SELECT ... FOR
UPDATE is what makes a state change happen once: two workers applying results for
the same monitor queue on its row lock, and the second one sees the first one's
streaks, so an outage is confirmed (and an incident opened) by exactly one of them.
Incidents are opened and closed inside that same transaction, under the same row
locks (``alerting.services.incidents_apply``), so an incident exists exactly when
the committed status says down; notifications are the caller's next step
(``alerting.services.alerts_process``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import OperationalError, connection, transaction

from alerting.services import incidents_apply
from monitors.dispatch import MYSQL_DEADLOCK
from monitors.models import Monitor
from sentinel.db import ascending_chunks
from telemetry.records import CheckResult

# A live-state update chosen as a deadlock victim is applied again, this many times in all.
APPLY_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class LiveState:
    status: str
    consecutive_failures: int
    consecutive_successes: int
    last_checked_at: dt.datetime | None
    confirm_failures: int = 2
    recover_successes: int = 1


@dataclass(frozen=True, slots=True)
class StateChange:
    """A monitor moved from one status to another because of ``result``."""

    monitor_id: int
    old_status: str
    new_status: str
    result: CheckResult
    # Failed checks in a row when the change happened (the incident's first count).
    consecutive_failures: int = 0
    # The incident this change opened (down) or closed (up), if any.
    incident_id: int | None = None


def state_after(state: LiveState, result: CheckResult) -> LiveState:
    """The live state once ``result`` is known (pure; paused monitors stay paused)."""
    failures = 0 if result.ok else state.consecutive_failures + 1
    successes = state.consecutive_successes + 1 if result.ok else 0
    status = state.status
    if status != Monitor.Status.PAUSED:
        if result.ok and (successes >= state.recover_successes or status == Monitor.Status.PENDING):
            status = Monitor.Status.UP
        elif not result.ok and failures >= state.confirm_failures:
            status = Monitor.Status.DOWN
    return LiveState(
        status,
        failures,
        successes,
        result.scheduled_at,
        state.confirm_failures,
        state.recover_successes,
    )


def monitors_apply_results(*, results: Sequence[CheckResult]) -> list[StateChange]:
    """Apply a batch of results to the monitors' live state; return the status changes.

    Results for deleted monitors are ignored here (ingest stores or dead-letters
    them). A result older than the monitor's last applied check arrived late and
    does not move the streaks.
    """
    by_monitor: dict[int, list[CheckResult]] = {}
    for result in sorted(results, key=lambda r: r.scheduled_at):
        by_monitor.setdefault(result.monitor_id, []).append(result)
    if not by_monitor:
        return []
    for attempt in range(APPLY_ATTEMPTS):
        try:
            return _apply(by_monitor)
        except OperationalError as exc:
            # A deadlock victim is rolled back whole (alerts queued on commit too), so
            # applying the batch again is safe; re-running its checks is not needed.
            if exc.args[0] != MYSQL_DEADLOCK or attempt == APPLY_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def _apply(by_monitor: dict[int, list[CheckResult]]) -> list[StateChange]:
    with transaction.atomic():
        current = _lock_states(list(by_monitor))  # sorted by ascending_chunks
        changes: list[StateChange] = []
        failed_while_down: dict[int, int] = {}
        updated: dict[int, LiveState] = {}
        for monitor_id, state in current.items():
            for result in by_monitor[monitor_id]:
                if state.last_checked_at and result.scheduled_at <= state.last_checked_at:
                    continue
                new = state_after(state, result)
                if new.status != state.status:
                    changes.append(
                        StateChange(
                            monitor_id, state.status, new.status, result, new.consecutive_failures
                        )
                    )
                elif new.status == Monitor.Status.DOWN and not result.ok:
                    failed_while_down[monitor_id] = failed_while_down.get(monitor_id, 0) + 1
                state = new
            updated[monitor_id] = state
        _write_states(updated)
        changes = incidents_apply(changes=changes, failed_while_down=failed_while_down)
    return changes


def _lock_states(monitor_ids: list[int]) -> dict[int, LiveState]:
    # Locking in id order keeps two workers (and the dispatcher) from deadlocking on
    # overlapping batches: ascending chunks of ids, each short enough for MariaDB to
    # lock along the primary key (sentinel.db).
    # Raw SQL: building this query through the ORM (a 100-id IN, select_for_update)
    # cost more CPU than the rest of the live-state update.
    table = Monitor._meta.db_table
    rows = []
    with connection.cursor() as cursor:
        for chunk in ascending_chunks(monitor_ids):
            cursor.execute(
                "SELECT id, status, consecutive_failures, consecutive_successes, "  # noqa: S608
                "last_checked_at, confirm_failures, recover_successes "
                f"FROM {table} WHERE id IN ({', '.join(['%s'] * len(chunk))}) "
                "ORDER BY id FOR UPDATE",
                chunk,
            )
            rows += cursor.fetchall()
    return {
        pk: LiveState(status, failures, successes, _aware(last), confirm, recover)
        for pk, status, failures, successes, last, confirm, recover in rows
    }


def _aware(moment: dt.datetime | None) -> dt.datetime | None:
    # The backend returns naive UTC datetimes to raw cursors (USE_TZ stores UTC).
    return moment.replace(tzinfo=dt.UTC) if moment is not None else None


def _write_states(states: dict[int, LiveState]) -> None:
    """One UPDATE ... JOIN over a derived table of the new values."""
    if not states:
        return
    rows = " UNION ALL ".join(
        ["SELECT %s AS id, %s AS st, %s AS cf, %s AS cs, %s AS lc"] * len(states)
    )
    params: list[int | str | dt.datetime | None] = []
    for pk, state in states.items():
        params += [
            pk,
            state.status,
            state.consecutive_failures,
            state.consecutive_successes,
            state.last_checked_at,
        ]
    table = Monitor._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} m JOIN ({rows}) v ON m.id = v.id "  # noqa: S608 (no user input)
            "SET m.status = v.st, m.consecutive_failures = v.cf, "
            "m.consecutive_successes = v.cs, m.last_checked_at = v.lc",
            params,
        )
