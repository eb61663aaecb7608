"""The dispatch journal: slots claimed in MySQL and not yet handed to RabbitMQ.

A dispatch claims slots by moving their monitors' ``next_check_at`` (a commit), then
publishes them as probe batches. Between the two, the slots exist only in the
dispatching process: a broker away at the publish, or the process killed between the
claim's commit and the publish, lost them, since the monitors had already moved on
and the next dispatch no longer found them due. So every slot is recorded here, in
Redis, as soon as its claim commits, and cleared once RabbitMQ confirmed the batch
that carries it; the next dispatch republishes what it finds left over
(``journal_orphans``).

**A republish is the same batch.** Each publish call records which slots it sends
together (a *group*) before sending; a republish sends the same group, so the probe
batches come out the same and each gets the same Celery task id
(``batch_task_id``, derived from the region and the slots, not random). The probe
batch claim in Redis (``monitors.batch``) knows a batch by its task id, so a batch
that did reach RabbitMQ after all (the worker died after the publish but before
clearing the journal; a confirm lost with the connection) is recognised and never
checked twice.

**When an entry is left over.** A dispatch whose publish failed gives its entries up
at once (``journal_abandon``), so the dispatch's retry a second later takes them. The
entries of a process that died say nothing: they are taken once they are
``ORPHAN_AFTER_MS`` old, far longer than a dispatch holds a slot between its claim and
its publish (at most its own duration, seconds), so a dispatch running beside another
never republishes what the other is about to send. A slot older than
``SENTINEL_DISPATCH_CATCH_UP_SECONDS`` (or the probe expiry, if longer) is given up
with one line: it is no longer worth checking.

Without Redis the journal is not written (one line): the dispatch hands failed slots
back to MySQL as before (``monitors.dispatch.monitors_release``); only a process killed
between claim and publish then loses its slots. The gap between a chunk's commit and
its journal entry is one Redis round trip.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import orjson
import redis
from django.conf import settings
from django.utils import timezone

from core.reachability import reachable_log, unreachable_log
from core.redis import redis_client
from core.time import to_epoch_ms
from monitors.slots import Slot

logger = logging.getLogger(__name__)

# Hash: "<monitor>:<slot ms>" -> the slot, when it was recorded and whether its
# dispatch gave it up (``_entry``).
JOURNAL_KEY = "sentinel:dispatch:journal"
# Hash: "<monitor>:<slot ms>" -> the group (publish call) that sends it.
GROUPS_KEY = "sentinel:dispatch:journal:groups"
# An entry of a dispatch that did not give it up is taken once it is this old (ms).
ORPHAN_AFTER_MS = 30_000
# Fields written per Redis round trip.
WRITE_CHUNK = 2_000
# Every batch id is a UUID in this namespace, from the region and the slots.
BATCH_ID_NAMESPACE = uuid.UUID("6b1f9c52-3f1e-4c55-9a8e-5f3c2f6d7e01")
JOURNAL_WAITS = "the dispatch hands slots it could not send back to MySQL instead of its journal"
JOURNAL_RESUMES = "the dispatch journal is written again"


def batch_task_id(*, region: str, slots: Sequence[Slot]) -> str:
    """The Celery task id of the probe batch of ``slots`` for ``region``: a UUID (5) of
    both, so the same batch published again is the same task to the probe batch claim,
    and any other batch a different one."""
    pairs = ",".join(f"{s.monitor_id}:{s.scheduled_ms}" for s in sorted(slots))
    return str(uuid.uuid5(BATCH_ID_NAMESPACE, f"{region}|{pairs}"))


@dataclass(frozen=True)
class Journal:
    """Where the journal lives and when an entry counts as left over (tests shorten it)."""

    orphan_after_ms: int = ORPHAN_AFTER_MS

    def record(self, slots: Sequence[Slot]) -> bool:
        """Record claimed ``slots`` (their claim committed); False, said once, if Redis
        did not answer (then nothing is recorded)."""
        now = _now_ms()
        return self._write({_field(s): _entry(s, at=now) for s in slots}, {})

    def sending(self, slots: Sequence[Slot]) -> bool:
        """Note that ``slots`` go out together in one publish call (their group), so a
        republish sends the same batches; False if Redis did not answer."""
        group = batch_task_id(region="group", slots=slots)
        return self._write({}, {_field(s): group for s in slots})

    def sent(self, slots: Sequence[Slot]) -> None:
        """Clear ``slots``: RabbitMQ has them. Without Redis they stay, and a republish
        is recognised by the batches' ids."""
        fields = [_field(s) for s in slots]
        try:
            pipe = redis_client().pipeline(transaction=False)
            for start in range(0, len(fields), WRITE_CHUNK):
                pipe.hdel(JOURNAL_KEY, *fields[start : start + WRITE_CHUNK])
                pipe.hdel(GROUPS_KEY, *fields[start : start + WRITE_CHUNK])
            pipe.execute()
        except redis.RedisError as exc:
            unreachable_log(logger, "redis", exc, JOURNAL_WAITS)

    def abandon(self, slots: Sequence[Slot]) -> bool:
        """Give ``slots`` up to the next dispatch at once (their publish failed); False
        if Redis did not answer."""
        return self._write({_field(s): _entry(s, at=0) for s in slots}, {})

    def orphans(self, *, now_ms: int | None = None) -> list[list[Slot]]:
        """The slots left over, each group that was being sent, then the slots never
        sent, together; they stay in the journal, recorded again now, so that this
        dispatch's publish clears them and no other takes them meanwhile. The ones too
        old to be worth a check are dropped with one line. [] if Redis does not answer."""
        now_ms = _now_ms() if now_ms is None else now_ms
        try:
            client = redis_client()
            entries: dict[bytes, bytes] = client.hgetall(JOURNAL_KEY)  # type: ignore[assignment]
            groups: dict[bytes, bytes] = client.hgetall(GROUPS_KEY)  # type: ignore[assignment]
        except redis.RedisError as exc:
            unreachable_log(logger, "redis", exc, JOURNAL_WAITS)
            return []
        oldest = now_ms - 1000 * max(
            settings.SENTINEL_DISPATCH_CATCH_UP_SECONDS, settings.SENTINEL_PROBE_EXPIRE_SECONDS
        )
        taken, stale = _left_over(entries, now_ms - self.orphan_after_ms, oldest)
        # Group marks of slots never recorded (Redis away at the record, back at the
        # publish, then the process killed): nothing to republish, nothing to keep.
        stale += [name for name in groups if name not in entries]
        if not taken and not stale:
            return []
        if not self._retake(taken, stale, now_ms=now_ms):
            return []
        too_old = sum(1 for name in stale if name in entries)
        if too_old:
            logger.warning(
                "%d slots claimed but never sent are too old to check now; given up", too_old
            )
        by_group: dict[bytes, list[Slot]] = defaultdict(list)
        for name, slot in taken.items():
            by_group[groups.get(name, b"")].append(slot)
        unsent = by_group.pop(b"", [])
        return [*by_group.values(), *([unsent] if unsent else [])]

    def _retake(self, taken: dict[bytes, Slot], stale: list[bytes], *, now_ms: int) -> bool:
        try:
            pipe = redis_client().pipeline(transaction=True)
            if stale:
                pipe.hdel(JOURNAL_KEY, *stale)
                pipe.hdel(GROUPS_KEY, *stale)
            if taken:
                entries = {name: _entry(slot, at=now_ms) for name, slot in taken.items()}
                pipe.hset(JOURNAL_KEY, mapping=entries)  # type: ignore[arg-type]
            pipe.execute()
        except redis.RedisError as exc:
            unreachable_log(logger, "redis", exc, JOURNAL_WAITS)
            return False
        return True

    def _write(self, entries: dict[str, bytes], groups: dict[str, str]) -> bool:
        try:
            pipe = redis_client().pipeline(transaction=False)
            for key, mapping in ((JOURNAL_KEY, entries), (GROUPS_KEY, groups)):
                items: list[tuple[str, bytes | str]] = list(mapping.items())
                for start in range(0, len(items), WRITE_CHUNK):
                    pipe.hset(key, mapping=dict(items[start : start + WRITE_CHUNK]))
            pipe.execute()
        except redis.RedisError as exc:
            unreachable_log(logger, "redis", exc, JOURNAL_WAITS)
            return False
        reachable_log(logger, "redis", JOURNAL_RESUMES)
        return True


def _left_over(
    entries: dict[bytes, bytes], before_ms: int, oldest_ms: int
) -> tuple[dict[bytes, Slot], list[bytes]]:
    """The entries recorded at or before ``before_ms`` or given up, by field, whose
    slots are no older than ``oldest_ms``; and the fields of those older."""
    taken: dict[bytes, Slot] = {}
    stale: list[bytes] = []
    for name, raw in entries.items():
        slot, at = _slot_of(raw)
        if at > before_ms:
            continue  # a dispatch at work may still send it
        if slot.scheduled_ms < oldest_ms:
            stale.append(name)
        else:
            taken[name] = slot
    return taken, stale


def _field(slot: Slot) -> str:
    return f"{slot.monitor_id}:{slot.scheduled_ms}"


def _entry(slot: Slot, *, at: int) -> bytes:
    """``[monitor, slot ms, starts ms or None, regions, spec, recorded at ms]`` (0: given
    up by its dispatch)."""
    return orjson.dumps(
        [slot.monitor_id, slot.scheduled_ms, slot.starts_ms, slot.regions, slot.spec, at]
    )


def _slot_of(raw: bytes) -> tuple[Slot, int]:
    monitor_id, scheduled_ms, starts_ms, regions, spec, at = orjson.loads(raw)
    return Slot(scheduled_ms, monitor_id, spec, starts_ms, tuple(regions)), at


def _now_ms() -> int:
    return to_epoch_ms(timezone.now())
