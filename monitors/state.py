"""A monitor's live state and incidents, moved forward by check results, in bulk.

Probe workers call ``monitors_apply_results`` once per batch: one locking SELECT
and one UPDATE for the whole batch, not one UPDATE per check. The SELECT ... FOR
UPDATE is what makes a state change happen once: two workers applying results for
the same monitor queue on its row lock, and the second one sees the first one's
streaks, so an outage is confirmed (and an incident opened) by exactly one of them.
Incidents are opened and closed inside that same transaction, under the same row
locks (``incidents_apply``), so an incident exists exactly when the committed
status says down. Notifications are alerting's business: ``monitors.batch`` tells it
through the ``results_applied`` signal.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.db import connection, transaction

from core.db import ascending_chunks, retry_on_deadlock, update_from_values
from core.time import as_utc
from monitors.models import Incident, Monitor, incidents_end
from monitors.validators import MAX_CONFIRM_WINDOW
from telemetry.records import CheckResult

# The outcomes kept for the window rule, newest in bit 0 (Monitor.recent_failures).
RECENT_MASK = (1 << MAX_CONFIRM_WINDOW) - 1


@dataclass(frozen=True, slots=True)
class LiveState:
    status: str
    consecutive_failures: int
    consecutive_successes: int
    last_checked_at: dt.datetime | None
    confirm_failures: int = 2
    recover_successes: int = 1
    recent_failures: int = 0  # bits, newest first: 1 for a failed check
    confirm_window: int = 5
    confirm_window_failures: int = 3

    def window_confirms(self) -> bool:
        """Whether enough of the last ``confirm_window`` checks failed. The threshold is
        never below ``confirm_failures``: the window rule catches failures that are not
        in a row, it never confirms sooner than the in-a-row rule would."""
        failed = (self.recent_failures & ((1 << self.confirm_window) - 1)).bit_count()
        return failed >= max(self.confirm_window_failures, self.confirm_failures)


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
    """The live state once ``result`` is known (pure; paused monitors stay paused).

    Down when ``confirm_failures`` checks in a row failed, or ``confirm_window_failures``
    of the last ``confirm_window`` did (a target failing every other check never
    fails twice in a row); up again after ``recover_successes`` successes in a row,
    which also clears the recent outcomes the window counts.
    """
    failures = 0 if result.ok else state.consecutive_failures + 1
    successes = state.consecutive_successes + 1 if result.ok else 0
    recent = ((state.recent_failures << 1) | (not result.ok)) & RECENT_MASK
    new = dataclasses.replace(
        state,
        consecutive_failures=failures,
        consecutive_successes=successes,
        last_checked_at=result.scheduled_at,
        recent_failures=recent,
    )
    status = state.status
    if status != Monitor.Status.PAUSED:
        if result.ok and (successes >= state.recover_successes or status == Monitor.Status.PENDING):
            status = Monitor.Status.UP
        elif not result.ok and (failures >= state.confirm_failures or new.window_confirms()):
            status = Monitor.Status.DOWN
    if status == Monitor.Status.UP and state.status != Monitor.Status.UP:
        # A recovery starts the count afresh: the outage's own failures must not make
        # the first blip after it a new outage.
        return dataclasses.replace(new, status=status, recent_failures=0)
    return dataclasses.replace(new, status=status)


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
    # A deadlock victim is rolled back whole (alerts queued on commit too), so applying
    # the batch again is safe; re-running its checks is not needed.
    return retry_on_deadlock(lambda: _apply(by_monitor))


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
    # lock along the primary key (core.db).
    # Raw SQL: building this query through the ORM (a 100-id IN, select_for_update)
    # cost more CPU than the rest of the live-state update.
    table = Monitor._meta.db_table
    rows = []
    with connection.cursor() as cursor:
        for chunk in ascending_chunks(monitor_ids):
            cursor.execute(
                "SELECT id, status, consecutive_failures, consecutive_successes, "  # noqa: S608
                "last_checked_at, confirm_failures, recover_successes, recent_failures, "
                "confirm_window, confirm_window_failures "
                f"FROM {table} WHERE id IN ({', '.join(['%s'] * len(chunk))}) "
                "ORDER BY id FOR UPDATE",
                chunk,
            )
            rows += cursor.fetchall()
    return {
        # The backend returns naive UTC datetimes to raw cursors (USE_TZ stores UTC).
        pk: LiveState(status, failures, successes, last and as_utc(last), *rest)
        for pk, status, failures, successes, last, *rest in rows
    }


def _write_states(states: dict[int, LiveState]) -> None:
    """One UPDATE ... JOIN over a derived table of the new values."""
    update_from_values(
        table=Monitor._meta.db_table,
        columns=("id", "status", "failures", "successes", "last_checked_at", "recent"),
        rows=[
            (
                pk,
                state.status,
                state.consecutive_failures,
                state.consecutive_successes,
                state.last_checked_at,
                state.recent_failures,
            )
            for pk, state in states.items()
        ],
        on="t.id = v.id",
        assignments="t.status = v.status, t.consecutive_failures = v.failures, "
        "t.consecutive_successes = v.successes, t.last_checked_at = v.last_checked_at, "
        "t.recent_failures = v.recent",
    )


def incidents_apply(
    *, changes: Sequence[StateChange], failed_while_down: dict[int, int]
) -> list[StateChange]:
    """Open an incident for each down change and close it on the up change.

    Must run inside ``monitors_apply_results``' transaction, which holds the
    monitors' row locks: that is why two workers can never both open one. Returns
    the changes with ``incident_id`` filled in. A monitor with several changes in one
    batch is handled in rounds, its first change in the first round, and so on.
    """
    out: list[StateChange] = []
    for round_ in _rounds(changes):
        opened = _incidents_open([c for c in round_ if c.new_status == Monitor.Status.DOWN])
        closed = _incidents_close([c for c in round_ if c.new_status == Monitor.Status.UP])
        for change in round_:
            found = opened if change.new_status == Monitor.Status.DOWN else closed
            out.append(dataclasses.replace(change, incident_id=found.get(change.monitor_id)))
    _incidents_count_failures(failed_while_down)
    return out


def _rounds(changes: Sequence[StateChange]) -> list[list[StateChange]]:
    seen: dict[int, int] = defaultdict(int)
    rounds: list[list[StateChange]] = []
    for change in changes:
        index = seen[change.monitor_id]
        seen[change.monitor_id] += 1
        if index == len(rounds):
            rounds.append([])
        rounds[index].append(change)
    return rounds


def _incidents_open(changes: list[StateChange]) -> dict[int, int]:
    if not changes:
        return {}
    # INSERT IGNORE: the monitor's row lock already makes a second open incident
    # impossible; the unique open_monitor_id is the database's guarantee of it.
    Incident.objects.bulk_create(
        [
            Incident(
                monitor_id=c.monitor_id,
                started_at=c.result.scheduled_at,
                first_failure_kind=c.result.failure.value if c.result.failure else "",
                first_failure_message=c.result.error[:200],
                checks_failed=max(c.consecutive_failures, 1),
                open_monitor_id=c.monitor_id,
            )
            for c in changes
        ],
        ignore_conflicts=True,
    )
    return _open_incident_ids([c.monitor_id for c in changes])


def _open_incident_ids(monitor_ids: Iterable[int]) -> dict[int, int]:
    rows = Incident.objects.filter(open_monitor_id__in=list(monitor_ids)).values_list(
        "open_monitor_id", "pk"
    )
    return {int(monitor_id): pk for monitor_id, pk in rows if monitor_id is not None}


def _incidents_close(changes: list[StateChange]) -> dict[int, int]:
    if not changes:
        return {}
    open_ids = _open_incident_ids(c.monitor_id for c in changes)
    to_close = [c for c in changes if c.monitor_id in open_ids]
    incidents_end(
        ends=[(c.monitor_id, c.result.scheduled_at) for c in to_close],
        reason=Incident.EndReason.RECOVERED,
    )
    return open_ids


def _incidents_count_failures(failed_while_down: dict[int, int]) -> None:
    if not failed_while_down:
        return
    update_from_values(
        table=Incident._meta.db_table,
        columns=("monitor_id", "failures"),
        rows=list(failed_while_down.items()),
        on="t.open_monitor_id = v.monitor_id",
        assignments="t.checks_failed = t.checks_failed + v.failures",
    )


def state_replay(
    state: LiveState, results: Iterable[CheckResult]
) -> tuple[LiveState, list[StateChange]]:
    """The live state after ``results``, applied once each in slot order from ``state``,
    and the status changes on the way (pure).

    What the stored rows say the live state must be, whatever order they arrived in:
    from a new monitor's state (pending, no streaks, never checked), the replay of all
    its rows is what applying results must have given. A change to down opens an
    incident at its result's slot and a change to up closes it there. Results at or
    before ``state.last_checked_at`` are skipped, as a late result is when applied.
    """
    changes: list[StateChange] = []
    for result in sorted(results, key=lambda r: r.scheduled_at):
        if state.last_checked_at and result.scheduled_at <= state.last_checked_at:
            continue
        new = state_after(state, result)
        if new.status != state.status:
            changes.append(
                StateChange(
                    result.monitor_id, state.status, new.status, result, new.consecutive_failures
                )
            )
        state = new
    return state, changes
