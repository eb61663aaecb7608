"""The dispatcher: claim the monitors due in the coming minute and send their slots.

Celery Beat runs ``dispatch_due`` once a minute (the schedule is installed by
migration ``0003_dispatch_schedule``). It never checks anything itself: it hands
out *slots* (monitor id + scheduled time, and what to check: ``monitors.slots``) in
batches over RabbitMQ, each batch sent with an ETA at the start of its second, and
the probe workers start each check at its exact slot.

Three properties, and what gives them:

- **Each slot is handed out once.** A monitor is claimed by moving its
  ``next_check_at`` past the slot with a conditional UPDATE, under a row lock, in
  one transaction per chunk. A second dispatcher (or a retried task, or a restarted
  Beat) blocks on the lock, then no longer finds the row due. Slots are published
  only after the claim commits, and wait in the dispatch journal (Redis,
  ``monitors.journal``) until RabbitMQ has them: a publish that fails, or a process
  killed before it, leaves them to the next dispatch, which sends them as the same
  batches (the task id is the batch's own, so none is checked twice). The
  claim reads what each slot's check needs in the same locking statements, so a
  probe worker checks the monitor as it was when its slot was claimed.
- **No thundering herd.** Every monitor has a stable phase within its interval
  (``monitor_phase_ms``: Fibonacci hashing of the id, which spreads consecutive
  ids evenly), and its slots are phase-aligned, so a minute's checks start evenly
  across the minute instead of all at second 0.
- **Missed slots are caught up, without a burst.** A dispatch that could not run
  (MySQL away, Beat down, the broker refusing the publish) leaves monitors behind their
  schedule. The next dispatch hands out the slots they missed that are still worth
  checking (no older than ``SENTINEL_DISPATCH_CATCH_UP_SECONDS``), each under its own
  scheduled time, so that every slot gets its result and an outage of a target that
  began meanwhile is still confirmed and alerted (``catch_up_plan``). They run one an
  interval, half an interval off the monitor's phase, while its slots on time go on as
  planned: twice the usual checks for as long as the monitor was behind, never a
  burst. A monitor that was due "now" rather than at a slot of its own (new, resumed,
  edited) gets one slot at its phase within the next minute, and so does one behind
  by more than the window.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from celery import Celery, current_app
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from core.db import lock_in_key_order, retry_on_deadlock, update_from_values
from core.regions import LOCAL, probe_queue
from core.time import from_epoch_ms, to_epoch_ms
from monitors.journal import Journal, batch_task_id
from monitors.models import Monitor
from monitors.regions import monitor_regions, slots_token
from monitors.slots import SPEC_COLUMNS, Slot, message_encode, spec_encode

logger = logging.getLogger(__name__)

PROBE_TASK = "monitors.probes.check_batch"
# 0.618..., the golden ratio's fraction: id * PHI mod 1 never clusters for runs of ids.
PHI_FRACTION = 0.6180339887498949
# A slot this late is still checked as planned (Beat fires a little late, a chunk
# of a large dispatch takes time); later than this it counts as missed.
LATE_GRACE_MS = 5_000
# Missed monitors are spread over at most this long, whatever their interval.
CATCH_UP_SPREAD_MS = 60_000
# Rows claimed per transaction. Commits: at 100,000 monitors a minute the whole server
# may commit about once per 1,000 results, most of it ingest's, so the claim takes 10
# per 100,000 slots (0.1 per 1,000; it was 1 per 1,000). Lock time: a chunk's rows stay
# locked until its commit, and ingest locks the same rows FOR UPDATE (in id order) to
# apply their live state, so a claim delays an ingest batch that meets one of its rows.
# A claim of 10,000 held its locks 0.45-0.6 s on the 2-core benchmark machine (20
# locking reads of 500 with the probe columns, planning, 10 UPDATEs of 1,000, the
# commit), against 0.04 s for 1,000; only the monitors whose previous result is being
# stored while their next slot is claimed meet it, about one chunk a minute. 20,000
# would halve the commits again for twice the wait. Within a chunk, rows are locked in
# ascending statements of core.db's size: one statement of 1,000 once locked out of id
# order and deadlocked with a probe batch, and ascending order across the whole
# transaction is what keeps it from deadlocking with ingest.
CLAIM_CHUNK = 10_000
# While a chunk's first slot is due within SEND_AHEAD_MS (a cold start, a dispatch
# that runs late), chunks are this small, so the first seconds are on the wire after
# a short claim rather than a long one. In steady state the first slot of a dispatch
# is 10 s ahead (the horizon's lead) and every chunk is a CLAIM_CHUNK.
CLAIM_SOON_CHUNK = 1000
# Rows moved per UPDATE ... JOIN statement of a claim.
CLAIM_UPDATE_ROWS = 1000
# Due monitors read per selection (ids, times and intervals only; a few MB). A minute
# of 100,000 monitors is one selection, so its slots can be claimed in time order.
SELECT_LIMIT = 250_000

Publisher = Callable[[Sequence[Slot]], None]


@dataclass(frozen=True)
class CatchUp:
    """The slots a monitor behind its schedule missed, as ``(slot, starts)`` pairs in
    epoch ms (each check starts after its slot), and its next slot, on time."""

    slots: list[tuple[int, int]]
    next_check_ms: int


@dataclass
class DispatchReport:
    claimed: int = 0
    republished: int = 0  # slots the journal held, left over by an earlier dispatch
    published_batches: int = 0
    realigned: int = 0
    slots: list[Slot] = field(default_factory=list)


# --- schedule arithmetic (pure) -------------------------------------------------


def monitor_phase_ms(*, monitor_id: int, interval_seconds: int) -> int:
    """Where in each interval this monitor's checks fall; stable for its lifetime."""
    return int((monitor_id * PHI_FRACTION) % 1.0 * interval_seconds * 1000)


def align_up(moment_ms: int, *, period_ms: int, phase_ms: int) -> int:
    """The first time >= ``moment_ms`` that is ``phase_ms`` into a ``period_ms`` cycle."""
    return moment_ms + (phase_ms - moment_ms) % period_ms


def plan_slot(
    *, monitor_id: int, interval_seconds: int, next_check_ms: int, now_ms: int
) -> tuple[int, int]:
    """``(slot, next_check)`` for a due monitor: the slot to check now, and the one after."""
    interval_ms = interval_seconds * 1000
    phase = monitor_phase_ms(monitor_id=monitor_id, interval_seconds=interval_seconds)
    if next_check_ms >= now_ms - LATE_GRACE_MS:
        slot = next_check_ms
    else:
        spread = min(interval_ms, CATCH_UP_SPREAD_MS)
        slot = align_up(now_ms, period_ms=spread, phase_ms=phase % spread)
    # The next slot is phase-aligned and at least half an interval away, so a
    # monitor that is off its phase (new, resumed, caught up) returns to it
    # without two checks in quick succession.
    following = align_up(slot + interval_ms // 2 + 1, period_ms=interval_ms, phase_ms=phase)
    return slot, following


def catch_up_plan(
    *,
    monitor_id: int,
    interval_seconds: int,
    next_check_ms: int,
    now_ms: int,
    window_ms: int | None = None,
) -> CatchUp | None:
    """The missed slots of a monitor behind its schedule and when each is checked, or
    None when it is not behind, or due "now" rather than at a slot of its own (its
    next check off its phase: new, resumed, edited), or catching up is off.

    The missed slots are those more than ``LATE_GRACE_MS`` past and no older than
    ``window_ms`` (default ``SENTINEL_DISPATCH_CATCH_UP_SECONDS``; 0 is off). The first
    starts within the next ``min(interval, CATCH_UP_SPREAD_MS)``, half an interval off
    the monitor's phase, and each one after it an interval later, so they fall between
    its slots on time, which go on as planned: the monitor is checked twice as often
    until the missed slots are done, for as long as it was behind.
    """
    late = now_ms - LATE_GRACE_MS
    if next_check_ms >= late:
        return None  # on time: most monitors of every dispatch, so first and cheap
    if window_ms is None:
        window_ms = settings.SENTINEL_DISPATCH_CATCH_UP_SECONDS * 1000
    interval_ms = interval_seconds * 1000
    phase = monitor_phase_ms(monitor_id=monitor_id, interval_seconds=interval_seconds)
    if window_ms <= 0 or (next_check_ms - phase) % interval_ms:
        return None
    first = max(next_check_ms, align_up(now_ms - window_ms, period_ms=interval_ms, phase_ms=phase))
    missed = range(first, late, interval_ms)
    if not missed:
        return None
    spread = min(interval_ms, CATCH_UP_SPREAD_MS)
    start = align_up(now_ms, period_ms=spread, phase_ms=(phase + interval_ms // 2) % spread)
    return CatchUp([(slot, start + slot - first) for slot in missed], missed[-1] + interval_ms)


# --- dispatch -------------------------------------------------------------------


def dispatch_due(
    *,
    now: dt.datetime | None = None,
    horizon_seconds: int | None = None,
    batch_size: int | None = None,
    publish: Publisher | None = None,
    journal: Journal | None = None,
) -> DispatchReport:
    """Republish what the journal holds left over, then claim every slot due before
    ``now + horizon`` and publish them in batches.

    Chunks are taken earliest first and their batches published as soon as they
    commit, so the first seconds of the minute are on the wire before the last chunk
    is claimed. A batch that is not full and not due soon is held back and merged with
    the next chunks' slots of the same second (see ``_publish_ready``). Claimed slots
    are in the ``journal`` (``monitors.journal``; by default the real one when
    ``publish`` is the real publisher, none for another) until RabbitMQ has them; a
    publish that fails leaves them there for the next dispatch, or, if the journal
    could not be written, hands them back to MySQL (``monitors_release``).
    """
    now = now or timezone.now()
    now_ms = to_epoch_ms(now)
    # In whole milliseconds, like every slot. With now's microseconds, a monitor moved
    # to exactly the horizon's millisecond (one per dispatch, at 60,000 monitors a
    # minute) stayed below the horizon, due, and was realigned to the same place for
    # ever: the dispatch never ended and no further slot went out.
    horizon = from_epoch_ms(
        now_ms + 1000 * (horizon_seconds or settings.SENTINEL_DISPATCH_HORIZON_SECONDS)
    )
    size = batch_size or settings.SENTINEL_PROBE_BATCH_SIZE
    if publish is None:
        publish, journal = probe_batches_publisher(batch_size=size), journal or Journal()
    sender = _Sender(publish, journal)
    report = DispatchReport()
    for group in journal.orphans() if journal else []:
        sender.journaled.update(group)
        sender.send(group)
        report.republished += len(group)
    if report.republished:
        logger.warning("republished %d slots claimed but never sent", report.republished)
    held: list[Slot] = []
    try:
        while planned := _select_due(horizon=horizon, now_ms=now_ms):
            for due_ids in _claim_chunks(planned):
                slots, realigned = monitors_claim(
                    monitor_ids=due_ids, now_ms=now_ms, horizon=horizon
                )
                report.realigned += realigned
                report.claimed += len(slots)
                report.slots.extend(slots)
                held = [*held, *slots]  # all of it is given up if a publish fails
                sender.record(slots)
                held = _publish_ready(held, sender=sender, batch_size=size)
        sender.send(held)
    except BaseException:
        # Claimed but never handed to the broker: the next dispatch sends them.
        sender.give_up(held)
        raise
    return report


# Partial batches due within this long are sent with their chunk rather than held.
SEND_AHEAD_MS = 5_000


def _publish_ready(slots: list[Slot], *, sender: _Sender, batch_size: int) -> list[Slot]:
    """Publish the full batches among ``slots`` and those starting within SEND_AHEAD_MS;
    return the rest to be merged with the next chunk.

    Why: in steady state a chunk's slots are consecutive in time and fill batches; but a
    cold start (every monitor overdue at once, e.g. after an outage or a bulk import)
    claims chunks in id order, each spread over the whole minute, which would send
    ~60 small batches per chunk (one per second) instead of full ones. Each probe
    batch holds a worker thread until its slowest check ends, so the small batches
    starved the probe workers for over a minute at 100,000 monitors.
    """
    soon_ms = wall_clock_ms() + SEND_AHEAD_MS
    ready: list[Slot] = []
    rest: list[Slot] = []
    for batch in slot_batches(slots, batch_size=batch_size):
        if len(batch) >= batch_size or batch[0].starts_at_ms < soon_ms:
            ready.extend(batch)
        else:
            rest.extend(batch)
    if ready:
        sender.send(ready)
    return rest


def _select_due(*, horizon: dt.datetime, now_ms: int) -> list[tuple[int, int]]:
    """The due monitors as ``(when the planned slot starts, id)``, in that order.

    Claiming in start order (not id or next_check_at order) matters after a cold start:
    when every monitor is overdue at once their catch-up slots are spread over the next
    minute by phase, and chunks in id order would each hold slots of the whole minute,
    so the last chunks' early slots would go out late, after every chunk before them
    was claimed. In start order, chunk k holds the k-th stretch of the minute.
    """
    # monitor_due_idx (enabled, next_check_at) serves this range scan. A plain read
    # outside the claim transaction: the claim re-reads under lock and plans again.
    rows = Monitor.objects.filter(enabled=True, next_check_at__lt=horizon).values_list(
        "pk", "next_check_at", "interval_seconds"
    )[:SELECT_LIMIT]
    return sorted(
        (_first_start(pk, to_epoch_ms(next_check_at), interval, now_ms=now_ms), pk)
        for pk, next_check_at, interval in rows
    )


def _first_start(pk: int, next_check_ms: int, interval: int, *, now_ms: int) -> int:
    """When the first check a claim of this monitor hands out starts (epoch ms)."""
    catch_up = catch_up_plan(
        monitor_id=pk, interval_seconds=interval, next_check_ms=next_check_ms, now_ms=now_ms
    )
    if catch_up is not None:
        return catch_up.slots[0][1]
    return plan_slot(
        monitor_id=pk, interval_seconds=interval, next_check_ms=next_check_ms, now_ms=now_ms
    )[0]


def wall_clock_ms() -> int:
    """Now, epoch ms: what "due soon" is measured against while a dispatch runs (the
    ``now`` a dispatch was given plans its slots; this clock says which are urgent)."""
    return to_epoch_ms(timezone.now())


def _claim_chunks(planned: Sequence[tuple[int, int]]) -> Iterator[list[int]]:
    """The ids of ``planned`` in chunks to claim, in slot order: CLAIM_CHUNK ids each, or
    CLAIM_SOON_CHUNK while a chunk's first slot is due within SEND_AHEAD_MS. Lazily, so
    each chunk is sized against the clock when its turn comes."""
    start = 0
    while start < len(planned):
        soon = planned[start][0] < wall_clock_ms() + SEND_AHEAD_MS
        size = min(CLAIM_CHUNK, CLAIM_SOON_CHUNK) if soon else CLAIM_CHUNK
        yield [pk for _, pk in planned[start : start + size]]
        start += size


def monitors_claim(
    *, monitor_ids: Iterable[int], now_ms: int, horizon: dt.datetime
) -> tuple[list[Slot], int]:
    """Claim the due slots of ``monitor_ids``; return them and how many were only realigned.

    The rows are locked in id order (the order ``monitors_apply_results`` locks
    in, so the two never deadlock) and re-read under the lock: a row another
    dispatcher claimed first is no longer due and is left alone.
    """
    ids = list(monitor_ids)
    # A deadlock victim is rolled back whole (nothing moved, nothing published), so
    # taking the claim again is safe.
    return retry_on_deadlock(lambda: _claim(ids, now_ms=now_ms, horizon=horizon))


def _claim(ids: list[int], *, now_ms: int, horizon: dt.datetime) -> tuple[list[Slot], int]:
    horizon_ms = to_epoch_ms(horizon)
    with transaction.atomic():
        # Lock by primary key only, in id order; the due conditions are checked on the
        # locked rows. A filter on (enabled, next_check_at) could make InnoDB lock through
        # monitor_due_idx in time order, which two dispatchers may cross.
        # What each check needs is read in the same statements: the spec a probe worker
        # gets is the monitor as it is when its slot is claimed.
        locked = lock_in_key_order(
            Monitor.objects.values_list(
                "pk", "enabled", "next_check_at", "interval_seconds", "regions", *SPEC_COLUMNS
            ),
            "pk",
            ids,
        )
        rows = [row for row in locked if row[1] and row[2] < horizon]
        moves: list[tuple[int, dt.datetime, int]] = []
        slots: list[Slot] = []
        realigned = 0
        for pk, _enabled, next_check_at, interval, chosen, *spec_values in rows:
            regions = monitor_regions(chosen)
            next_check_ms = to_epoch_ms(next_check_at)
            catch_up = catch_up_plan(
                monitor_id=pk, interval_seconds=interval, next_check_ms=next_check_ms, now_ms=now_ms
            )
            if catch_up is not None:
                # All of its missed slots at once, some of them past the horizon: the
                # dispatches after this one find it on time.
                moves.append((pk, next_check_at, catch_up.next_check_ms))
                spec = spec_encode(spec_values)
                slots.extend(
                    Slot(slot, pk, spec, starts, regions) for slot, starts in catch_up.slots
                )
                continue
            slot, following = plan_slot(
                monitor_id=pk, interval_seconds=interval, next_check_ms=next_check_ms, now_ms=now_ms
            )
            if slot >= horizon_ms:
                # A missed monitor whose catch-up slot lies beyond this dispatch:
                # move it there; the dispatch that covers it will send it.
                moves.append((pk, next_check_at, slot))
                realigned += 1
            else:
                moves.append((pk, next_check_at, following))
                slots.append(Slot(slot, pk, spec_encode(spec_values), regions=regions))
        for offset in range(0, len(moves), CLAIM_UPDATE_ROWS):
            _move_next_checks(moves[offset : offset + CLAIM_UPDATE_ROWS])
    return sorted(slots), realigned


def _move_next_checks(moves: Sequence[tuple[int, dt.datetime, int]]) -> None:
    """One conditional UPDATE ... JOIN: set next_check_at only where it is still the old value."""
    adapt = connection.ops.adapt_datetimefield_value
    changed = update_from_values(
        table=Monitor._meta.db_table,
        columns=("id", "old", "new"),
        rows=[(pk, adapt(old), adapt(from_epoch_ms(new_ms))) for pk, old, new_ms in moves],
        casts={"old": "DATETIME(6)", "new": "DATETIME(6)"},
        on="t.id = v.id AND t.next_check_at = v.old",
        assignments="t.next_check_at = v.new",
    )
    if changed != len(moves):
        # Cannot happen while the rows are locked; if it does, claim nothing.
        raise RuntimeError(f"claimed {changed} of {len(moves)} locked monitors")


class _Sender:
    """Publishes claimed slots through the journal, if any: recorded when claimed,
    grouped before each publish call, cleared when RabbitMQ has them. Which slots the
    journal holds is kept per slot: Redis may answer for one chunk and not the next."""

    def __init__(self, publish: Publisher, journal: Journal | None) -> None:
        self.publish, self.journal = publish, journal
        self.journaled: set[Slot] = set()  # slots compare by monitor and time

    def record(self, slots: Sequence[Slot]) -> None:
        """Put ``slots`` in the journal (claimed, not yet sent), if Redis answers."""
        if self.journal is not None and self.journal.record(slots):
            self.journaled.update(slots)

    def send(self, slots: Sequence[Slot]) -> None:
        """Publish ``slots`` in one call; if it fails, give them up (``give_up``) and
        raise. The group is noted and cleared for every slot, recorded or not: a slot
        recorded by a chunk whose record this process took for failed is still cleared."""
        if not slots:
            return
        if self.journal is not None:
            self.journal.sending(slots)
        try:
            self.publish(slots)
        except Exception:
            # The task says what failed, once (monitors.tasks).
            self.give_up(slots)
            raise
        if self.journal is not None:
            self.journal.sent(slots)
        self.journaled.difference_update(slots)

    def give_up(self, slots: Sequence[Slot]) -> None:
        """Leave ``slots`` to the next dispatch: those in the journal there, which it
        republishes (the same batches, by the same ids); the others, and all of them if
        Redis does not answer now, due again in MySQL (its claim takes them again, as
        new batches)."""
        kept = [s for s in slots if s in self.journaled]
        if kept and self.journal is not None and self.journal.abandon(kept):
            logger.debug("publishing %d slots failed; left in the journal", len(kept))
        else:
            kept = []
        kept_set = set(kept)
        handed_back = [s for s in slots if s not in kept_set]
        if handed_back:
            released = monitors_release(slots=handed_back)
            logger.debug("publishing %d slots failed; released %d", len(slots), released)


def monitors_release(*, slots: Sequence[Slot]) -> int:
    """Make claimed-but-unsent slots due again (only where nobody moved them since)."""
    released = 0
    for slot in slots:
        released += Monitor.objects.filter(
            pk=slot.monitor_id, next_check_at__gt=timezone.now()
        ).update(next_check_at=from_epoch_ms(slot.scheduled_ms))
    return released


# --- publishing -----------------------------------------------------------------


def slot_batches(slots: Sequence[Slot], *, batch_size: int) -> list[list[Slot]]:
    """Slots grouped by the second they start in, at most ``batch_size`` per batch.

    A batch is sent to start at its second, and the worker starts each check at its
    own slot within it, so batching never bunches checks together.
    """
    batches: list[list[Slot]] = []
    current: list[Slot] = []
    for slot in sorted(slots, key=_start_order):
        if current and (
            len(current) >= batch_size
            or slot.starts_at_ms // 1000 != current[0].starts_at_ms // 1000
        ):
            batches.append(current)
            current = []
        current.append(slot)
    if current:
        batches.append(current)
    return batches


def _start_order(slot: Slot) -> tuple[int, int, int]:
    return slot.starts_at_ms, slot.scheduled_ms, slot.monitor_id


def slots_by_region(slots: Sequence[Slot]) -> dict[str, list[Slot]]:
    """The slots each region is handed: every slot goes to each of its ``regions`` (the
    local region's queue for a slot without any), so the checks of one slot run side
    by side in all of them."""
    by_region: dict[str, list[Slot]] = {}
    for slot in slots:
        for region in slot.regions or (LOCAL,):
            by_region.setdefault(region, []).append(slot)
    return by_region


def probe_batches_publisher(*, batch_size: int, app: Celery | None = None) -> Publisher:
    """Publish slots as probe tasks on their regions' queues (``probes`` for the local
    region, ``probes.<region>`` for another), one producer for all, through ``app``
    (the current one by default). A remote region's batch carries its region and the
    token of its slots (``monitors.regions``). Each task's id is the batch's own
    (``monitors.journal.batch_task_id``): the same slots sent again are the same task."""

    def publish(slots: Sequence[Slot]) -> None:
        sending = app or current_app
        expire = dt.timedelta(seconds=settings.SENTINEL_PROBE_EXPIRE_SECONDS)
        now = timezone.now()
        with sending.producer_or_acquire() as producer:
            for region, batch in _region_batches(slots, batch_size=batch_size):
                start = from_epoch_ms(batch[0].starts_at_ms // 1000 * 1000)
                args, kwargs = message_encode(batch)
                if region != LOCAL:
                    kwargs["region"] = region
                    kwargs["token"] = slots_token(region=region, pairs=args[0])
                sending.send_task(
                    PROBE_TASK,
                    args=args,
                    kwargs=kwargs,
                    task_id=batch_task_id(region=region, slots=batch),
                    queue=probe_queue(region),
                    # Early batches go now; the others wait in the worker for their second.
                    eta=start if start > now else None,
                    # A backlog never replays stale slots: a late batch is dropped and
                    # its monitors' next slots go ahead as planned.
                    expires=max(start, now) + expire,
                    producer=producer,
                )

    return publish


def _region_batches(slots: Sequence[Slot], *, batch_size: int) -> Iterator[tuple[str, list[Slot]]]:
    for region, handed in slots_by_region(slots).items():
        for batch in slot_batches(handed, batch_size=batch_size):
            yield region, batch
