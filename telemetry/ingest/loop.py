"""The batch (take, parse, store, ack), the drain and the long-lived loop."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson
import redis
from django.conf import settings
from django.db import (
    DatabaseError,
    DataError,
    IntegrityError,
    connections,
)

from core.reachability import SERVICE_NAMES, unreachable_log
from telemetry.buffer import DeadLetter, Entry, buffer_ack, buffer_client, buffer_take
from telemetry.ingest.parse import Parsed, entries_parse
from telemetry.ingest.store import StoreOutcome, rows_store
from telemetry.records import WireRow
from telemetry.rollups import rollups_fold
from telemetry.stats import stats_record_ingest

log = logging.getLogger(__package__)  # one logger for the package, as before the split

# Folds (of up to FOLD_MAX_PENDING batches each) after a drain that emptied the buffer.
FOLDS_AFTER_DRAIN = 10
PERIODIC_CONSUMER = "periodic"
PERIODIC_LOCK_KEY = "sentinel:ingest:periodic-lock"
# What ingest does while each service is away: the end of its "unreachable" line.
WHILE_DOWN = {
    "database": "results stay in the Redis buffer and drain when it is back",
    "redis": "ingest waits for it",
}


@dataclass
class BatchOutcome:
    taken: int = 0  # results in the entries taken
    reclaimed: int = 0  # of those, taken over from a dead consumer
    stored: int = 0  # rows inserted into check_result
    duplicates: int = 0  # results already stored (a replay)
    dead_letters: int = 0

    def add(self, other: BatchOutcome) -> None:
        for name in ("taken", "reclaimed", "stored", "duplicates", "dead_letters"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def ingest_batch(
    *,
    consumer: str,
    batch_size: int | None = None,
    block_ms: int | None = None,
    reclaim: bool | None = None,
    linger_ms: int = 0,
    using: str = "default",
) -> BatchOutcome:
    """Take, parse, store and acknowledge one batch. Raises ``django.db.Error`` if
    MySQL fails and ``redis.RedisError`` if Redis does; the batch then stays pending
    in Redis and the next call for this consumer takes it again."""
    count = batch_size or settings.TELEMETRY_INGEST_BATCH_SIZE
    entries, reclaimed = buffer_take(
        consumer=consumer, count=count, block_ms=block_ms, reclaim=reclaim, linger_ms=linger_ms
    )
    outcome = BatchOutcome(taken=sum(e.count for e in entries), reclaimed=reclaimed)
    if not entries:
        return outcome
    parsed, dead = entries_parse(entries=entries)
    rows = [row for _, entry_rows in parsed for row in entry_rows]
    stored, more_dead = _store_or_isolate(parsed, rows, using=using)
    dead += more_dead
    outcome.stored, outcome.duplicates = stored.stored, stored.duplicates
    outcome.dead_letters = len(dead)
    buffer_ack(entries=entries, dead_letters=dead)
    if rows:
        stats_record_ingest(
            client=buffer_client(),
            size=len(rows),
            stored=stored.stored,
            duplicates=stored.duplicates,
            oldest_started_ms=min(row[2] for row in rows),
            now=dt.datetime.now(dt.UTC),
        )
    return outcome


def _store_or_isolate(
    parsed: Parsed, rows: list[WireRow], *, using: str
) -> tuple[StoreOutcome, list[DeadLetter]]:
    """Store the batch (``rows``: the rows of ``parsed``); results for unknown monitors
    become dead letters. If MySQL refuses the data itself (not its availability), store
    one by one and dead-letter the refused ones, so one bad result cannot block the
    buffer."""
    try:
        outcome = rows_store(rows=rows, using=using)
    except (DataError, IntegrityError):
        return _store_one_by_one(parsed, using=using)
    dead = [
        _unknown_monitor_letter(entry, row)
        for entry, entry_rows in parsed
        for row in entry_rows
        if row[0] in outcome.unknown_monitors
    ]
    return outcome, dead


def _unknown_monitor_letter(entry: Entry, row: WireRow) -> DeadLetter:
    reason = f"monitor {row[0]} does not exist (deleted?)"
    return DeadLetter(entry.entry_id, reason, orjson.dumps(row))


def _store_one_by_one(parsed: Parsed, *, using: str) -> tuple[StoreOutcome, list[DeadLetter]]:
    total = StoreOutcome()
    dead: list[DeadLetter] = []
    for entry, entry_rows in parsed:
        for row in entry_rows:
            try:
                one = rows_store(rows=[row], using=using)
            except (DataError, IntegrityError) as exc:
                reason = f"MySQL refused it: {exc}"
                dead.append(DeadLetter(entry.entry_id, reason, orjson.dumps(row)))
                continue
            if one.unknown_monitors:
                dead.append(_unknown_monitor_letter(entry, row))
            total.stored += one.stored
            total.duplicates += one.duplicates
    return total, dead


def ingest_drain(
    *,
    consumer: str,
    max_seconds: float,
    batch_size: int | None = None,
    between_batches: Callable[[], None] | None = None,
    using: str = "default",
) -> BatchOutcome:
    """Store batches until the buffer is empty or ``max_seconds`` have passed, then
    fold the rollup deltas (all of them when the buffer was emptied)."""
    deadline = time.monotonic() + max_seconds
    total = BatchOutcome()
    first = True
    while True:
        outcome = ingest_batch(
            consumer=consumer, batch_size=batch_size, reclaim=first or None, using=using
        )
        first = False
        total.add(outcome)
        if outcome.taken == 0 or time.monotonic() >= deadline:
            break
        if between_batches:
            between_batches()
    # Emptied the buffer: fold what is pending (bounded, as other ingestors may keep
    # appending); stopped by the deadline: one fold, the next drain does the rest.
    for _ in range(FOLDS_AFTER_DRAIN if outcome.taken == 0 else 1):
        if not rollups_fold(using=using):
            break
    return total


def ingest_periodic(*, max_seconds: float = 20.0) -> BatchOutcome | None:
    """The Beat-scheduled drain: one at a time (a ``SET NX EX`` lock), so that a Beat
    hiccup delivering two runs at once cannot make two drains share the
    ``periodic`` consumer. Returns None when another run holds the lock."""
    client = buffer_client()
    token = f"{time.time_ns()}"
    ttl = int(max_seconds) + 30
    if not client.set(PERIODIC_LOCK_KEY, token, nx=True, ex=ttl):
        log.debug("ingest: another periodic drain is running; skipped")
        return None
    try:
        return ingest_drain(
            consumer=PERIODIC_CONSUMER,
            max_seconds=max_seconds,
            between_batches=lambda: _extend_lock(client, token, ttl),
        )
    except DatabaseError as exc:
        unreachable_log(log, "database", exc, WHILE_DOWN["database"])
        return None
    except redis.RedisError as exc:
        unreachable_log(log, "redis", exc, WHILE_DOWN["redis"])
        return None
    finally:
        _release_lock(client, token)


_EXTEND_LOCK = (
    "if redis.call('GET', KEYS[1]) == ARGV[1] then "
    "return redis.call('EXPIRE', KEYS[1], ARGV[2]) else return 0 end"
)
_RELEASE_LOCK = (
    "if redis.call('GET', KEYS[1]) == ARGV[1] then "
    "return redis.call('DEL', KEYS[1]) else return 0 end"
)


def _extend_lock(client: redis.Redis, token: str, ttl: int) -> None:
    client.eval(_EXTEND_LOCK, 1, PERIODIC_LOCK_KEY, token, ttl)


def _release_lock(client: redis.Redis, token: str) -> None:
    with contextlib.suppress(redis.RedisError):  # it expires by itself
        client.eval(_RELEASE_LOCK, 1, PERIODIC_LOCK_KEY, token)


def ingest_forever(
    *,
    consumer: str,
    batch_size: int | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    using: str = "default",
) -> BatchOutcome:
    """The long-lived loop of ``manage.py ingest``: batches as fast as they come,
    blocking on the stream when it is empty, backing off while MySQL or Redis is
    down (one log line when an outage starts, one when it ends)."""
    total = BatchOutcome()
    backoff = _Backoff()
    first = True
    folded_at = time.monotonic()
    while not should_stop():
        try:
            connections[using].close_if_unusable_or_obsolete()
            outcome = ingest_batch(
                consumer=consumer,
                batch_size=batch_size,
                block_ms=1000,
                reclaim=first or None,
                linger_ms=settings.TELEMETRY_INGEST_LINGER_MS,
                using=using,
            )
            # Fold while idle, or at least every TELEMETRY_ROLLUP_FOLD_SECONDS when busy:
            # the longer the interval, the more checks each rollup write carries.
            now = time.monotonic()
            if outcome.taken == 0 or now - folded_at >= settings.TELEMETRY_ROLLUP_FOLD_SECONDS:
                rollups_fold(using=using)
                folded_at = now
        except DatabaseError as exc:
            connections[using].close()
            backoff.failed("database", exc)
            continue
        except redis.RedisError as exc:
            backoff.failed("redis", exc)
            continue
        first = False
        backoff.succeeded()
        total.add(outcome)
    return total


class _Backoff:
    """Sleeps 0.5 s doubling to 15 s between failed attempts; logs (and so counts) an
    outage when it starts, and its end."""

    def __init__(self) -> None:
        self.delay = 0.0
        self.down: str | None = None  # the service away ("database", "redis")

    def failed(self, service: str, exc: BaseException) -> None:
        if self.down != service:
            unreachable_log(log, service, exc, WHILE_DOWN[service])
            self.down = service
        self.delay = min(15.0, max(0.5, self.delay * 2))
        time.sleep(self.delay)

    def succeeded(self) -> None:
        if self.down:
            log.info("%s is back; ingest resumes", SERVICE_NAMES[self.down])
        self.down = None
        self.delay = 0.0
