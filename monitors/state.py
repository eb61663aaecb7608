"""A monitor's live state and incidents, moved forward by stored check results, in bulk.

Ingest applies a batch's results where it stores them, in the same transaction as the
rows (``telemetry.signals.results_stored``, received in ``monitors.receivers``): one
locking SELECT and one UPDATE for the whole batch. The SELECT ... FOR UPDATE is what
makes a state change happen once: two ingest processes applying results for the same
monitor queue on its row lock, and the second sees the first one's streaks, so an
outage is confirmed (and an incident opened) by exactly one of them. Incidents are
opened and closed under the same row locks (``incidents_apply``), so an incident
exists exactly when the committed status says down. Notifications are alerting's
business: the receiver tells it through ``monitors.signals.results_applied``.

**Order.** Results of one monitor are applied in slot order. A result whose slot is
after the monitor's last applied one moves the state forward, as it comes. A *late*
result (its slot is at or before the last applied one: a batch that was retried,
reclaimed from a dead ingest process or replayed from the spool) is applied in its
place: the state is recomputed from a *checkpoint* (the state as of an earlier slot,
kept on the monitor row, ``Monitor.state_checkpoints``) over the monitor's stored
results since then, which now include the late one. So the final state is the one an
in-order arrival would have given. Two checkpoints are kept, at least
``LATE_WINDOW_MS`` apart, so a result up to that late is always applied in its place;
a result later than the oldest checkpoint is stored and counted in reports, but does
not move the live state (it is older than anything the state can still be rebuilt
from). The incidents since the checkpoint are made to match the rebuilt history
(``_incidents_rebuild``); alerts follow the status as a whole: if it differs from the
status before, that is one change at the result that decided it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from django.db import connection, transaction
from django.utils import timezone

from core.db import ascending_chunks, retry_on_deadlock, sql_ids, update_from_values
from core.regions import LOCAL
from core.time import as_utc, from_epoch_ms, to_epoch_ms
from monitors.models import Incident, Monitor, incidents_end
from monitors.regions import monitor_regions, regions_quorum, slot_deadline_ms, slot_verdict
from monitors.validators import MAX_CONFIRM_WINDOW
from telemetry.records import CheckResult, FailureKind

# The outcomes kept for the window rule, newest in bit 0 (Monitor.recent_failures).
RECENT_MASK = (1 << MAX_CONFIRM_WINDOW) - 1
PENDING, UP, DOWN, PAUSED = (
    Monitor.Status.PENDING,
    Monitor.Status.UP,
    Monitor.Status.DOWN,
    Monitor.Status.PAUSED,
)
# How late a result may arrive and still be applied in its place (slot time behind the
# monitor's last applied check): longer than a retried probe batch, a batch reclaimed
# from a dead ingest process (TELEMETRY_INGEST_RECLAIM_SECONDS) or a spool replayed
# after a short Redis outage. The recomputation reads at most two windows of results.
LATE_WINDOW_MS = 15 * 60 * 1000
CHECKPOINTS_KEPT = 2


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
        return _window_confirms(
            self.recent_failures,
            self.confirm_window,
            self.confirm_window_failures,
            self.confirm_failures,
        )


def _window_confirms(recent: int, window: int, window_failures: int, in_a_row: int) -> bool:
    failed = (recent & ((1 << window) - 1)).bit_count()
    return failed >= max(window_failures, in_a_row)


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
    # For a change to up: the failed checks of the same batch that kept the monitor down
    # before it (they count in the incident it closes).
    failed_while_down: int = 0


def state_after(state: LiveState, result: CheckResult) -> LiveState:
    """The live state once ``result`` is known (pure; paused monitors stay paused).

    Down when ``confirm_failures`` checks in a row failed, or ``confirm_window_failures``
    of the last ``confirm_window`` did (a target failing every other check never
    fails twice in a row); up again after ``recover_successes`` successes in a row,
    which also clears the recent outcomes the window counts. Built field by field, not
    with ``dataclasses.replace``: ingest runs this for every result it stores.
    """
    ok = result.ok
    failures = 0 if ok else state.consecutive_failures + 1
    successes = state.consecutive_successes + 1 if ok else 0
    recent = ((state.recent_failures << 1) | (not ok)) & RECENT_MASK
    status = old = state.status
    if status != PAUSED:
        if ok and (successes >= state.recover_successes or status == PENDING):
            status = UP
        elif not ok and (
            failures >= state.confirm_failures
            or _window_confirms(
                recent,
                state.confirm_window,
                state.confirm_window_failures,
                state.confirm_failures,
            )
        ):
            status = DOWN
    if status == UP and old != UP:
        # A recovery starts the count afresh: the outage's own failures must not make
        # the first blip after it a new outage.
        recent = 0
    return LiveState(
        status,
        failures,
        successes,
        result.scheduled_at,
        state.confirm_failures,
        state.recover_successes,
        recent,
        state.confirm_window,
        state.confirm_window_failures,
    )


def state_replay(
    state: LiveState, results: Iterable[CheckResult]
) -> tuple[LiveState, list[StateChange]]:
    """``state`` moved forward by ``results`` in slot order, once each (pure): the final
    state and every status change on the way (``incident_id`` unset). Results at or
    before ``state.last_checked_at`` are skipped, as a replay is.

    What the stored rows say the live state must be, whatever order they arrived in:
    from a new monitor's state (pending, no streaks, never checked) the replay of all
    its rows is what applying them must have given; a change to down opens an incident
    at its result's slot and a change to up closes it there.
    """
    last = state.last_checked_at
    ordered = sorted(
        (r for r in results if last is None or r.scheduled_at > last),
        key=lambda r: r.scheduled_at,
    )
    walked = _walk(state, ordered)
    return walked.state, walked.changes


@dataclass
class _Walk:
    state: LiveState
    changes: list[StateChange]
    failed_while_down: int  # failed checks that kept a down monitor down since the last change
    # A late result's rebuild: the checkpoint it started from and every change on the
    # way, from which the monitor's incidents since are made right (``_incidents_rebuild``).
    rebuild: _Rebuild | None = None


@dataclass(frozen=True)
class _Rebuild:
    since: dt.datetime | None  # the checkpoint's slot (None: before the first check)
    start: LiveState
    changes: list[StateChange]


def _walk(state: LiveState, results: Iterable[CheckResult]) -> _Walk:
    """``state_replay`` over results already in slot order, counting the failures
    that kept a down monitor down (the open incident's count)."""
    walk = _Walk(state, [], 0)
    for result in results:
        new = state_after(walk.state, result)
        if new.status != walk.state.status:
            walk.changes.append(
                StateChange(
                    result.monitor_id,
                    walk.state.status,
                    new.status,
                    result,
                    new.consecutive_failures,
                    failed_while_down=walk.failed_while_down,
                )
            )
            walk.failed_while_down = 0
        elif new.status == Monitor.Status.DOWN and not result.ok:
            walk.failed_while_down += 1
        walk.state = new
    return walk


def monitors_apply_results(*, results: Sequence[CheckResult]) -> list[StateChange]:
    """Apply newly stored results to the monitors' live state; return the status changes.

    Call it inside the transaction that stored ``results`` in ``check_result`` (a late
    result is applied by reading the monitor's stored results back, see the module
    docstring); ingest does. Results for deleted monitors are ignored here (ingest
    dead-letters them).
    """
    by_monitor: dict[int, list[CheckResult]] = {}
    for result in sorted(results, key=lambda r: r.scheduled_at):
        by_monitor.setdefault(result.monitor_id, []).append(result)
    if not by_monitor:
        return []
    if connection.in_atomic_block:
        # Inside ingest's transaction: a deadlock rolls the whole batch back, and
        # ingest takes it again.
        return _apply(by_monitor)
    # A deadlock victim is rolled back whole (alerts queued on commit too), so
    # applying the batch again is safe.
    return retry_on_deadlock(lambda: _apply_atomically(by_monitor))


def _apply_atomically(by_monitor: dict[int, list[CheckResult]]) -> list[StateChange]:
    with transaction.atomic():
        return _apply(by_monitor)


# A checkpoint as kept in Monitor.state_checkpoints: the live state once every result
# up to slot_ms was applied (slot_ms 0: before the first check).
Checkpoint = tuple[int, str, int, int, int]  # (slot_ms, status, failures, successes, recent)


@dataclass
class _Row:
    """A monitor's locked live state and checkpoints, as the batch moves them, and how
    many regions check it and must see a slot fail (``monitors.regions``)."""

    state: LiveState
    checkpoints: list[Checkpoint]
    checkpoints_changed: bool = False
    regions: int = 1
    quorum: int = 1
    timeout_seconds: int = 10


def _apply(by_monitor: dict[int, list[CheckResult]]) -> list[StateChange]:
    current = _lock_states(list(by_monitor))  # in ascending id order (core.db)
    by_monitor = _slot_verdicts(by_monitor, current)
    current = {m: row for m, row in current.items() if by_monitor.get(m)}
    changes: list[StateChange] = []
    failed_while_down: dict[int, int] = {}
    rebuilt: list[StateChange] = []
    late: dict[int, list[CheckResult]] = {}
    for monitor_id, row in current.items():
        last = row.state.last_checked_at
        if last is not None:
            late[monitor_id] = [r for r in by_monitor[monitor_id] if r.scheduled_at <= last]
    # One read for every late monitor's stored results, not one per monitor: a batch
    # reclaimed from a dead ingest process is late for all its monitors at once.
    since = {m: cp[0] for m, rs in late.items() if (cp := _checkpoint_before(current[m], rs))}
    stored = _stored_since(since)
    now_ms = to_epoch_ms(timezone.now())
    for monitor_id, rows in stored.items():
        if current[monitor_id].regions > 1:
            stored[monitor_id] = _verdicts_of(rows, current[monitor_id], now_ms)
    incidents = _incidents_since(since)
    for monitor_id, row in current.items():
        results = by_monitor[monitor_id]
        walk = (
            _replay_late(monitor_id, row, late[monitor_id], results, stored.get(monitor_id, []))
            if late.get(monitor_id)
            else _forward(row, results)
        )
        if walk.rebuild:
            # Most late results change nothing: no change on the way, no incident since.
            if walk.rebuild.changes or walk.changes or incidents.get(monitor_id):
                rebuilt += _incidents_rebuild(
                    monitor_id, walk.rebuild, walk.changes, incidents.get(monitor_id, [])
                )
            continue
        changes += walk.changes
        if walk.failed_while_down:
            failed_while_down[monitor_id] = walk.failed_while_down
    _write_states(current)
    return rebuilt + incidents_apply(changes=changes, failed_while_down=failed_while_down)


def _forward(row: _Row, results: list[CheckResult]) -> _Walk:
    """Results after the last applied one: the state moves on from where it is."""
    before = row.state
    walk = _walk(before, results)
    row.state = walk.state
    _checkpoint_push(row, before)
    return walk


def _checkpoint_push(row: _Row, before: LiveState) -> None:
    """Keep the state as it was before this batch as a checkpoint when the newest one
    is ``LATE_WINDOW_MS`` older, or there is none. A monitor never checked gets one at
    slot 0: its stored results are all the history there is."""
    anchor = 0 if before.last_checked_at is None else to_epoch_ms(before.last_checked_at)
    if row.checkpoints and anchor - row.checkpoints[-1][0] < LATE_WINDOW_MS:
        return
    checkpoint = (
        anchor,
        before.status,
        before.consecutive_failures,
        before.consecutive_successes,
        before.recent_failures,
    )
    row.checkpoints = [*row.checkpoints, checkpoint][-CHECKPOINTS_KEPT:]
    row.checkpoints_changed = True


def _checkpoint_before(row: _Row, late: list[CheckResult]) -> Checkpoint | None:
    """The newest checkpoint before the earliest of ``late`` (none: too late)."""
    if not late:
        return None
    earliest = to_epoch_ms(late[0].scheduled_at)
    usable = [cp for cp in row.checkpoints if cp[0] < earliest]
    return usable[-1] if usable else None


def _replay_late(
    monitor_id: int,
    row: _Row,
    late: list[CheckResult],
    results: list[CheckResult],
    stored: list[CheckResult],
) -> _Walk:
    """Recompute the state from the newest checkpoint before the earliest late result,
    over the monitor's stored results since then (``stored``, this batch's among them)."""
    checkpoint = _checkpoint_before(row, late)
    if checkpoint is None:
        # Later than anything the state can be rebuilt from: stored, not applied.
        return _forward(row, [r for r in results if r not in late])
    slot_ms, status, failures, successes, recent = checkpoint
    start = dataclasses.replace(
        row.state,
        status=status,
        consecutive_failures=failures,
        consecutive_successes=successes,
        recent_failures=recent,
        last_checked_at=from_epoch_ms(slot_ms) if slot_ms else None,
    )
    stored_slots = {r.scheduled_at for r in stored}
    if not any(r.scheduled_at in stored_slots for r in late):
        # Not stored in this transaction: a replay handed in by a direct caller (ingest
        # hands in only the rows it inserted). Nothing to rebuild.
        return _forward(row, [r for r in results if r not in late])
    # This batch's own results carry what the table does not (the certificate subject).
    ours = {r.scheduled_at: r for r in results}
    walk = _walk(start, [ours.get(r.scheduled_at, r) for r in stored])
    before = row.state
    # Checkpoints after the late slot describe a history without it.
    row.checkpoints = [cp for cp in row.checkpoints if cp[0] <= slot_ms]
    row.checkpoints_changed = True
    row.state = walk.state
    rebuild = _Rebuild(start.last_checked_at, start, walk.changes)
    if walk.state.status == before.status:
        return _Walk(walk.state, [], 0, rebuild)
    # One change for alerting, from the status before to the rebuilt one, at the check
    # that decided it.
    decided = walk.changes[-1] if walk.changes else None
    change = StateChange(
        monitor_id,
        before.status,
        walk.state.status,
        decided.result if decided else stored[-1],
        decided.consecutive_failures if decided else walk.state.consecutive_failures,
    )
    return _Walk(walk.state, [change], 0, rebuild)


def _incidents_rebuild(
    monitor_id: int, rebuild: _Rebuild, changes: list[StateChange], stored: list[Incident]
) -> list[StateChange]:
    """Make the monitor's incidents since the checkpoint what the rebuilt history says.

    An incident that history still has keeps its row (its end moved if need be), and so
    does one whose time overlaps an incident of history that begins at another check
    (its start moved): the same outage, whose alerts keep their delivery ids; one that
    the late result shows was never confirmed ends at its start with the reason
    "revised" (its alerts went out; the row stays as the record of them); one history
    now has and the table lacks is created, without alerts of its own when it is over.
    ``changes`` is the alerting change of the batch (at most one, the status before to
    the rebuilt status); it is returned with the incident it opened or closed.
    ``stored``: the monitor's incidents open at or begun or ended after the checkpoint
    (``_incidents_since``).
    """
    wanted = _incidents_wanted(rebuild)
    was_open = next((i.pk for i in stored if i.ended_at is None), None)
    by_start = {started: end for started, end in wanted}
    starts = {incident.started_at for incident in stored}  # matched as they are, first
    keep_open: Incident | None = None
    for incident in stored:
        if rebuild.since is not None and incident.started_at <= rebuild.since:
            # Open at the checkpoint: it lasts until the first recovery since.
            end = wanted[0][1] if wanted and wanted[0][0] is None else None
            if rebuild.start.status != Monitor.Status.DOWN:
                continue  # not ours to judge: the checkpoint says it had ended
        elif incident.started_at in by_start:
            end = by_start.pop(incident.started_at)
        elif (moved := _overlapping(incident, by_start, taken=starts)) is not None:
            # The same outage, begun at another check than the one that opened it (a
            # late result before it failed too, or passed): it keeps its row, and so its
            # alerts their delivery ids; only its start moves.
            end = by_start.pop(moved)
            _incident_move(incident, moved, rebuild.changes)
        else:
            _incident_end(incident, incident.started_at, Incident.EndReason.REVISED)
            continue
        if end is None:
            keep_open = incident
        else:
            _incident_end(incident, end, Incident.EndReason.RECOVERED)
    for started, end in by_start.items():
        if started is None:
            continue
        opening = next(c for c in rebuild.changes if c.result.scheduled_at == started)
        incident = Incident(
            monitor_id=monitor_id,
            started_at=started,
            first_failure_kind=opening.result.failure.value if opening.result.failure else "",
            first_failure_message=opening.result.error[:200],
            checks_failed=max(opening.consecutive_failures, 1),
            regions=_failed_regions(opening.result),
        )
        if end is None:
            keep_open = incident
        else:
            _incident_end(incident, end, Incident.EndReason.RECOVERED)
    if keep_open is not None:
        # Last, once every other row has given up the monitor's one open slot.
        keep_open.ended_at, keep_open.end_reason, keep_open.duration_seconds = None, "", None
        keep_open.open_monitor_id = monitor_id
        keep_open.save()
    now_open = keep_open.pk if keep_open is not None else None
    return [
        dataclasses.replace(
            change, incident_id=now_open if change.new_status == Monitor.Status.DOWN else was_open
        )
        for change in changes
    ]


def _overlapping(
    incident: Incident,
    wanted: dict[dt.datetime | None, dt.datetime | None],
    *,
    taken: set[dt.datetime],
) -> dt.datetime | None:
    """The start of the earliest of the ``wanted`` incidents (start -> end, None: open)
    whose time overlaps ``incident``'s, or None; starts in ``taken`` (another incident
    row begins there) are not considered."""
    ends_at = incident.ended_at
    for started, end in sorted(wanted.items(), key=_by_start):
        if started is None or started in taken:
            continue
        if (ends_at is None or started < ends_at) and (end is None or incident.started_at < end):
            return started
    return None


def _by_start(item: tuple[dt.datetime | None, dt.datetime | None]) -> dt.datetime:
    return item[0] or dt.datetime.min.replace(tzinfo=dt.UTC)


def _incident_move(incident: Incident, started: dt.datetime, changes: list[StateChange]) -> None:
    """Move ``incident``'s start to ``started``, with what the check that opened it there
    saw (the caller saves it)."""
    opening = next((c for c in changes if c.result.scheduled_at == started), None)
    incident.started_at = started
    if opening is not None:
        incident.first_failure_kind = opening.result.failure.value if opening.result.failure else ""
        incident.first_failure_message = opening.result.error[:200]
        incident.regions = _failed_regions(opening.result)


def _incidents_wanted(rebuild: _Rebuild) -> list[tuple[dt.datetime | None, dt.datetime | None]]:
    """``(started_at, ended_at)`` of the incidents the rebuilt history has since the
    checkpoint, ``started_at`` None for the one open at the checkpoint."""
    wanted: list[tuple[dt.datetime | None, dt.datetime | None]] = []
    if rebuild.start.status == Monitor.Status.DOWN:
        wanted.append((None, None))
    for change in rebuild.changes:
        at = change.result.scheduled_at
        if change.new_status == Monitor.Status.DOWN:
            wanted.append((at, None))
        elif change.new_status == Monitor.Status.UP and wanted and wanted[-1][1] is None:
            wanted[-1] = (wanted[-1][0], at)
    return wanted


def _incidents_since(since: dict[int, int]) -> dict[int, list[Incident]]:
    """Each monitor's incidents open, begun or ended after its slot in ``since`` (monitor
    id -> epoch ms), oldest first. Raw SQL, a range of incident_monitor_started_idx per
    monitor, one statement per chunk: the ORM took longer to build the condition for a
    chunk than MariaDB to answer it. Usually none."""
    table = Incident._meta.db_table
    ids: list[int] = []
    with connection.cursor() as cursor:
        for chunk in ascending_chunks(since):
            each = "(monitor_id = %s AND (ended_at IS NULL OR started_at > %s OR ended_at > %s))"
            params: list[int | dt.datetime] = []
            for monitor_id in chunk:
                at = from_epoch_ms(since[monitor_id])
                params += [monitor_id, at, at]
            cursor.execute(
                f"SELECT id FROM {table} WHERE {' OR '.join([each] * len(chunk))}",  # noqa: S608
                params,
            )
            ids += [pk for (pk,) in cursor.fetchall()]
    found: dict[int, list[Incident]] = {}
    for incident in Incident.objects.filter(pk__in=ids).order_by("started_at", "pk"):
        found.setdefault(incident.monitor_id, []).append(incident)
    return found


def _incident_end(incident: Incident, at: dt.datetime, reason: str) -> None:
    incident.ended_at, incident.end_reason, incident.open_monitor_id = at, reason, None
    incident.duration_seconds = max(int((at - incident.started_at).total_seconds()), 0)
    incident.save()


_STORED_COLUMNS = (
    "scheduled_at, started_at, duration_ms, ok, status_code, failure, error, dns_ms, "
    "connect_ms, tls_ms, ttfb_ms, tls_expires_at, region"
)


def _stored_since(since: dict[int, int]) -> dict[int, list[CheckResult]]:
    """Each monitor's stored results after its slot in ``since`` (monitor id -> epoch
    ms), in slot order (and region order within a slot): this transaction's own and
    what other ingest processes committed. One read per chunk of monitors, a
    primary-key range each.

    Connections run READ COMMITTED (Django's default for MySQL), so this plain read sees
    every batch that applied a monitor's state before us (they committed before we got
    its row lock); a batch still storing rows of the monitor is not seen, and applies
    them after us, late. A locking read here deadlocked with such a batch: it waited for
    that batch's new rows while that batch waited for the monitor's row lock."""
    found: dict[int, list[CheckResult]] = {}
    with connection.cursor() as cursor:
        for chunk in ascending_chunks(since):
            ranges = " OR ".join(["(monitor_id = %s AND scheduled_at > %s)"] * len(chunk))
            cursor.execute(
                f"SELECT monitor_id, {_STORED_COLUMNS} FROM check_result "  # noqa: S608
                f"WHERE {ranges} ORDER BY monitor_id, scheduled_at, region",
                [v for m in chunk for v in (m, from_epoch_ms(since[m]))],
            )
            for row in cursor.fetchall():
                found.setdefault(row[0], []).append(_stored_result(row))
    return found


def _stored_result(row: Sequence[Any]) -> CheckResult:
    """A result from a row of ``monitor_id, _STORED_COLUMNS``."""
    m, s, st, d, ok, sc, f, e, a, b, c, t, x, region = row
    return CheckResult(
        monitor_id=m,
        scheduled_at=as_utc(s),
        started_at=as_utc(st),
        duration_ms=d,
        ok=bool(ok),
        status_code=sc,
        failure=FailureKind(f) if f else None,
        error=e,
        dns_ms=a,
        connect_ms=b,
        tls_ms=c,
        ttfb_ms=t,
        tls_expires_at=as_utc(x) if x else None,
        region=region,
    )


def _slot_verdicts(
    by_monitor: dict[int, list[CheckResult]], current: dict[int, _Row]
) -> dict[int, list[CheckResult]]:
    """The batch's new results as slot verdicts (``monitors.regions``): unchanged for a
    monitor checked from one region. For one checked from several: the verdicts of its
    slots after its last applied one that are decided now, this batch's or earlier
    ones' that their deadline decides (one range read per chunk of monitors); and for
    a slot at or before it, its verdict only if this batch's results decide it (a
    late result). Read under the monitors' row locks, so two ingest processes storing
    two regions' results of one slot take turns, and the second sees the first's."""
    several = {m: rs for m, rs in by_monitor.items() if m in current and current[m].regions > 1}
    if not several:
        return by_monitor
    now_ms = to_epoch_ms(timezone.now())
    since = {m: _last_ms(current[m]) for m in several}
    after = _stored_since(since)
    late = {
        m: {r.scheduled_at for r in rs if to_epoch_ms(r.scheduled_at) <= since[m]}
        for m, rs in several.items()
    }
    stored = _stored_slots({m: slots for m, slots in late.items() if slots})
    out = dict(by_monitor)
    for monitor_id, results in several.items():
        row = current[monitor_id]
        verdicts = []
        for slot in sorted(late[monitor_id]):
            every = stored.get((monitor_id, slot), [])
            new = {r.region for r in results if r.scheduled_at == slot}
            before = [r for r in every if r.region not in new]
            if not _verdict(before, row, now_ms) and (v := _verdict(every, row, now_ms)):
                verdicts.append(v)
        out[monitor_id] = verdicts + _verdicts_of(after.get(monitor_id, []), row, now_ms)
    return out


def _last_ms(row: _Row) -> int:
    last = row.state.last_checked_at
    return 0 if last is None else to_epoch_ms(last)


def _verdict(results: list[CheckResult], row: _Row, now_ms: int) -> CheckResult | None:
    if not results:
        return None
    slot_ms = to_epoch_ms(results[0].scheduled_at)
    expired = slot_deadline_ms(slot_ms, timeout_seconds=row.timeout_seconds) <= now_ms
    return slot_verdict(results, regions=row.regions, quorum=row.quorum, expired=expired)


def _verdicts_of(results: list[CheckResult], row: _Row, now_ms: int) -> list[CheckResult]:
    """The decided verdicts of a multi-region monitor's stored results (in slot order)."""
    by_slot: dict[dt.datetime, list[CheckResult]] = {}
    for result in results:
        by_slot.setdefault(result.scheduled_at, []).append(result)
    verdicts = (_verdict(rs, row, now_ms) for _, rs in sorted(by_slot.items()))
    return [v for v in verdicts if v is not None]


def _stored_slots(
    slots: dict[int, set[dt.datetime]],
) -> dict[tuple[int, dt.datetime], list[CheckResult]]:
    """Every region's stored result of the given slots (monitor id -> slots), by
    ``(monitor id, slot)``: one primary-key lookup per slot, one statement per chunk."""
    keys = sorted((m, s) for m, ss in slots.items() for s in ss)
    found: dict[tuple[int, dt.datetime], list[CheckResult]] = {}
    with connection.cursor() as cursor:
        for offset in range(0, len(keys), 500):
            chunk = keys[offset : offset + 500]
            cursor.execute(
                f"SELECT monitor_id, {_STORED_COLUMNS} FROM check_result "  # noqa: S608
                f"WHERE (monitor_id, scheduled_at) IN ({', '.join(['(%s, %s)'] * len(chunk))})",
                [v for m, s in chunk for v in (m, s)],
            )
            for row in cursor.fetchall():
                result = _stored_result(row)
                found.setdefault((result.monitor_id, result.scheduled_at), []).append(result)
    return found


def _lock_states(monitor_ids: list[int]) -> dict[int, _Row]:
    # Locking in id order keeps two ingest processes (and the dispatcher) from
    # deadlocking on overlapping batches: ascending chunks of ids, each short enough
    # for MariaDB to lock along the primary key (core.db).
    # Raw SQL: building this query through the ORM (a 100-id IN, select_for_update)
    # cost more CPU than the rest of the live-state update.
    table = Monitor._meta.db_table
    rows = []
    with connection.cursor() as cursor:
        for chunk in ascending_chunks(monitor_ids):
            # Ids rendered as integers: the driver's quoting of a thousand parameters
            # cost more than the query.
            cursor.execute(
                "SELECT id, state_checkpoints, status, consecutive_failures, "  # noqa: S608
                "consecutive_successes, last_checked_at, confirm_failures, recover_successes, "
                "recent_failures, confirm_window, confirm_window_failures, regions, "
                "regions_confirm, timeout_seconds, kind "
                f"FROM {table} WHERE id IN ({sql_ids(chunk)}) "
                "ORDER BY id FOR UPDATE"
            )
            rows += cursor.fetchall()
    return {
        # The backend returns naive UTC datetimes to raw cursors (USE_TZ stores UTC).
        pk: _row(pk, checkpoints, status, failures, successes, last, rest)
        for pk, checkpoints, status, failures, successes, last, *rest in rows
    }


def _row(
    pk: int,
    checkpoints: str | None,
    status: str,
    failures: int,
    successes: int,
    last: dt.datetime | None,
    rest: list[Any],
) -> _Row:
    *confirmation, regions, confirm, timeout_seconds, kind = rest
    # A heartbeat is not checked from anywhere: its pings make one result a slot.
    probed = kind in Monitor.PROBED_KINDS
    count = len(monitor_regions(orjson.loads(regions) if regions else [])) if probed else 1
    return _Row(
        LiveState(status, failures, successes, last and as_utc(last), *confirmation),
        [tuple(cp) for cp in orjson.loads(checkpoints)] if checkpoints else [],
        regions=count,
        quorum=regions_quorum(regions=count, confirm=confirm),
        timeout_seconds=timeout_seconds,
    )


def _write_states(rows: dict[int, _Row]) -> None:
    """One UPDATE ... JOIN over a derived table of the new values, and one more for the
    checkpoints that changed (a monitor's every 15 minutes or so): kept out of the first,
    whose every row would otherwise carry its monitor's checkpoints back."""
    update_from_values(
        table=Monitor._meta.db_table,
        columns=("id", "status", "failures", "successes", "last_checked_at", "recent"),
        rows=[
            (
                pk,
                row.state.status,
                row.state.consecutive_failures,
                row.state.consecutive_successes,
                row.state.last_checked_at,
                row.state.recent_failures,
            )
            for pk, row in rows.items()
        ],
        on="t.id = v.id",
        assignments="t.status = v.status, t.consecutive_failures = v.failures, "
        "t.consecutive_successes = v.successes, t.last_checked_at = v.last_checked_at, "
        "t.recent_failures = v.recent",
    )
    update_from_values(
        table=Monitor._meta.db_table,
        columns=("id", "checkpoints"),
        rows=[
            (pk, orjson.dumps(row.checkpoints).decode())
            for pk, row in rows.items()
            if row.checkpoints_changed
        ],
        on="t.id = v.id",
        assignments="t.state_checkpoints = v.checkpoints",
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
        recovered = [c for c in round_ if c.new_status == Monitor.Status.UP]
        # Counted before the close: a closed incident no longer has an open_monitor_id.
        _incidents_count_failures({c.monitor_id: c.failed_while_down for c in recovered})
        closed = _incidents_close(recovered)
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
                regions=_failed_regions(c.result),
                open_monitor_id=c.monitor_id,
            )
            for c in changes
        ],
        ignore_conflicts=True,
    )
    return _open_incident_ids([c.monitor_id for c in changes])


def _failed_regions(result: CheckResult) -> str:
    """The regions an incident names: those whose checks of its confirming slot failed
    (a verdict's ``region``), none for the local region alone."""
    return "" if result.region == LOCAL else result.region[:200]


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
    failed_while_down = {m: n for m, n in failed_while_down.items() if n}
    if not failed_while_down:
        return
    update_from_values(
        table=Incident._meta.db_table,
        columns=("monitor_id", "failures"),
        rows=list(failed_while_down.items()),
        on="t.open_monitor_id = v.monitor_id",
        assignments="t.checks_failed = t.checks_failed + v.failures",
    )
