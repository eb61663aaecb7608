"""The consumer side: ingest takes entries through the stream's consumer group and
acknowledges them (and dead-letters the bad ones) once MySQL has committed them.

``buffer_take`` hands out this consumer's own pending entries first (a failed attempt,
or its previous life), then entries a dead consumer left pending longer than
``TELEMETRY_INGEST_RECLAIM_SECONDS`` (``XAUTOCLAIM``), then new ones. The group hands
each entry to one consumer, so ingestors run in parallel without sharing a batch.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import redis
from django.conf import settings

from telemetry.buffer.stream import (
    COUNT_FIELD,
    DEAD_LETTER_COUNT_KEY,
    DEAD_LETTER_KEY,
    DEPTH_KEY,
    ENTRY_MAX_RESULTS,
    FIELD,
    GROUP,
    PING_FIELD,
    STREAM_KEY,
    buffer_client,
)

log = logging.getLogger(__package__)  # one logger for the package, as before the split

# The newest dead letters kept for inspection (the counter keeps the exact total): a
# broken probe release must not fill Redis' memory with garbage.
DEAD_LETTER_MAX = 100_000
# Reclaiming scans the group's pending list; once every few seconds is plenty.
RECLAIM_EVERY_SECONDS = 5.0
# Entries acknowledged per script call (see buffer_ack).
ACK_CHUNK = 2000
# Consumers of the group with nothing pending and idle this long are forgotten.
FORGET_CONSUMER_AFTER_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class Entry:
    """One stream entry; ``raw`` is None when the entry was already deleted."""

    entry_id: str
    raw: bytes | None
    count: int = 1  # results it holds, as its pusher counted them
    ping: bytes | None = None  # a heartbeat ping's row (telemetry.pings), if it is one


@dataclass(frozen=True)
class DeadLetter:
    entry_id: str
    reason: str
    raw: bytes

    def to_json(self) -> str:
        return json.dumps(
            {
                "id": self.entry_id,
                "reason": self.reason,
                "raw": self.raw.decode("utf-8", errors="replace"),
                "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            }
        )


_last_reclaim: dict[str, float] = {}

# Forget consumers that hold nothing and have been idle a long time (a worker that
# restarted under a new name). Atomic, so a consumer cannot take entries between
# the check and the deletion (XGROUP DELCONSUMER would drop its pending entries).
_FORGET_IDLE_CONSUMERS = """
local removed = 0
for _, consumer in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
    local info = {}
    for i = 1, #consumer, 2 do info[consumer[i]] = consumer[i + 1] end
    if tonumber(info['pending']) == 0 and tonumber(info['idle']) > tonumber(ARGV[2]) then
        redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], info['name'])
        removed = removed + 1
    end
end
return removed
"""


def buffer_take(
    *,
    consumer: str,
    count: int,
    block_ms: int | None = None,
    reclaim: bool | None = None,
    linger_ms: int = 0,
    own_pending: bool = True,
) -> tuple[list[Entry], int]:
    """Take entries holding up to about ``count`` results for ``consumer`` (whole
    entries, so a batch may pass ``count`` by part of one); returns (entries,
    results reclaimed).

    ``reclaim=None`` reclaims dead consumers' entries at most every few seconds, and
    again at once while the last reclaim found some; True forces it (start-up), False
    skips it. Once new entries arrive, keep taking
    for up to ``linger_ms`` until they hold ``count`` results: a trickle of results
    becomes a few large transactions instead of many small ones.
    ``own_pending=False`` skips this consumer's own pending entries: the caller
    holds them (a batch being stored while the next is taken).
    """
    client = buffer_client()
    _ensure_group(client)
    # This consumer's own pending entries are what it took before: up to two batches
    # (one being stored, the next taken ahead).
    if own_pending:
        own = _entries(client.xreadgroup(GROUP, consumer, {STREAM_KEY: "0"}, count=count))
        if own:
            return own, 0
    # Entries hold up to ENTRY_MAX_RESULTS results: ask for as many as cannot hold
    # much more than ``count``, then for more by the size of those that came.
    first = max(1, math.ceil(count / ENTRY_MAX_RESULTS))
    now = time.monotonic()
    if reclaim or (
        reclaim is None and now - _last_reclaim.get(consumer, 0.0) >= RECLAIM_EVERY_SECONDS
    ):
        claimed = _reclaim(client, consumer=consumer, count=first)
        # While a dead consumer's backlog lasts, the next take reclaims again rather
        # than waiting its turn: those are the oldest results, and each batch they
        # wait makes them later for the live state (a result later than its monitor's
        # checkpoints is stored but cannot move it: monitors.state). A process killed
        # with a batch stored and the next taken ahead leaves two.
        _last_reclaim[consumer] = 0.0 if claimed else now
        if claimed:
            return claimed, sum(entry.count for entry in claimed)
    fresh = _entries(
        client.xreadgroup(GROUP, consumer, {STREAM_KEY: ">"}, count=first, block=block_ms)
    )
    deadline = now + linger_ms / 1000
    while fresh and (results := sum(e.count for e in fresh)) < count:
        left = deadline - time.monotonic()
        more = client.xreadgroup(
            GROUP,
            consumer,
            {STREAM_KEY: ">"},
            count=math.ceil((count - results) * len(fresh) / max(results, 1)),
            # Without a linger, take what is there now and stop.
            block=int(left * 1000) + 1 if left > 0 else None,
        )
        if not more:
            break
        fresh += _entries(more)
    return fresh, 0


def _ensure_group(client: redis.Redis) -> None:
    try:
        client.xgroup_create(STREAM_KEY, GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def _reclaim(client: redis.Redis, *, consumer: str, count: int) -> list[Entry]:
    idle_ms = settings.TELEMETRY_INGEST_RECLAIM_SECONDS * 1000
    reply = client.xautoclaim(
        STREAM_KEY, GROUP, consumer, min_idle_time=idle_ms, start_id="0-0", count=count
    )
    claimed = _entry_list(reply[1])
    client.eval(_FORGET_IDLE_CONSUMERS, 1, STREAM_KEY, GROUP, FORGET_CONSUMER_AFTER_MS)
    if claimed:
        log.info("reclaimed %d buffer entries left pending by a dead ingest consumer", len(claimed))
    return claimed


def _entries(reply: Any) -> list[Entry]:
    """Entries from an XREADGROUP reply (RESP2 list or RESP3 dict)."""
    if not reply:
        return []
    streams = reply.values() if isinstance(reply, dict) else [item[1] for item in reply]
    entries: list[Entry] = []
    for messages in streams:
        if isinstance(messages, list) and messages and isinstance(messages[0], list):
            messages = messages[0]  # RESP3 wraps the entry list once more
        entries.extend(_entry_list(messages))
    return entries


def _entry_list(messages: Iterable[Any]) -> list[Entry]:
    entries = []
    for entry_id, fields in messages:
        text_id = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
        if not fields:
            # A deleted entry still pending comes back with no fields (an entry always
            # has at least one): stored already, it holds nothing to count.
            entries.append(Entry(text_id, None, 0))
            continue
        # An entry without our field is malformed (b""); one without a count, from
        # an earlier release, holds one result.
        entries.append(
            Entry(
                text_id,
                fields.get(FIELD, b""),
                _int(fields.get(COUNT_FIELD)),
                fields.get(PING_FIELD),
            )
        )
    return entries


def _int(raw: bytes | None) -> int:
    try:
        return max(1, int(raw)) if raw is not None else 1
    except ValueError:
        return 1


# Acknowledge and delete entries and take the results of those this call deleted
# off the depth counter (an entry deleted already, by a consumer that stored it
# too, was taken off then).
_ACK = """
local gone = 0
redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, 2, (#ARGV + 1) / 2))
for i = 2, (#ARGV + 1) / 2 do
    if redis.call('XDEL', KEYS[1], ARGV[i]) == 1 then
        gone = gone + tonumber(ARGV[i + (#ARGV - 1) / 2])
    end
end
if gone > 0 and redis.call('DECRBY', KEYS[2], gone) < 0 then
    redis.call('SET', KEYS[2], 0)
end
return gone
"""


def buffer_ack(*, entries: Sequence[Entry], dead_letters: Sequence[DeadLetter]) -> None:
    """Dead-letter, acknowledge and delete a stored batch, atomically (MULTI)."""
    if not entries:
        return
    client = buffer_client()
    pipe = client.pipeline(transaction=True)
    if dead_letters:
        pipe.lpush(DEAD_LETTER_KEY, *(d.to_json() for d in dead_letters))
        pipe.ltrim(DEAD_LETTER_KEY, 0, DEAD_LETTER_MAX - 1)
        pipe.incrby(DEAD_LETTER_COUNT_KEY, len(dead_letters))
    script = _ack_script(client)
    # In chunks: the script unpacks its ids onto Lua's stack, which holds about 8,000
    # values, and a batch of heartbeat pings is 10,000 one-result entries. One MULTI
    # still acknowledges the whole batch at once.
    for offset in range(0, len(entries), ACK_CHUNK):
        chunk = entries[offset : offset + ACK_CHUNK]
        ids = [entry.entry_id for entry in chunk]
        counts = [entry.count for entry in chunk]
        script(keys=[STREAM_KEY, DEPTH_KEY], args=[GROUP, *ids, *counts], client=pipe)
    pipe.execute()


_ACK_SCRIPTS: dict[int, Any] = {}


def _ack_script(client: redis.Redis) -> Any:
    script = _ACK_SCRIPTS.get(id(client))
    if script is None:
        script = _ACK_SCRIPTS[id(client)] = client.register_script(_ACK)
    return script
