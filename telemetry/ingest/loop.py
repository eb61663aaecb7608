"""The batch (take, parse, store, ack), the drain and the long-lived loop; the last two
take each batch on a helper thread while the one before is stored (``_batches``)."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import logging
import operator
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import orjson
import redis
from django.conf import settings
from django.db import (
    DatabaseError,
    DataError,
    IntegrityError,
    connections,
)

from core.prefetch import prefetched
from core.reachability import reachable_log, unreachable_log
from telemetry.buffer import (
    DeadLetter,
    Entry,
    buffer_ack,
    buffer_client,
    buffer_depth,
    buffer_take,
)
from telemetry.ingest.parse import Parsed, entries_parse, entries_pings
from telemetry.ingest.store import Rendered, StoreOutcome, rows_render, rows_store
from telemetry.pings import PingRow, ping_row_decode
from telemetry.records import WireRow
from telemetry.rollups import rollups_fold, rollups_premerge
from telemetry.stats import stats_record_ingest

log = logging.getLogger(__package__)  # one logger for the package, as before the split

# Folds (of up to FOLD_MAX_RESULTS results each) after a drain that emptied the buffer.
FOLDS_AFTER_DRAIN = 10
# The loop waits this long on an empty stream before it looks again (and folds).
IDLE_BLOCK_MS = 1000
# The take-ahead thread waits at most this long for the batch being stored to go to
# MySQL before it takes the next (see _takes).
SEND_WAIT_SECONDS = 0.05
PERIODIC_CONSUMER = "periodic"
PERIODIC_LOCK_KEY = "sentinel:ingest:periodic-lock"
# Set (with a short expiry) by every running ``manage.py ingest`` loop as it works: the
# periodic drain leaves the buffer to it while the backlog is under a batch. Two
# consumers on one stream halve each other's batches, and a drain took its batches
# without a linger: at 100,000 monitors a minute the drain's small transactions were
# most of the server's commits.
LOOP_ALIVE_KEY = "sentinel:ingest:loop-alive"
LOOP_ALIVE_SECONDS = 15
# What ingest does while each service is away: the end of its "unreachable" line.
WHILE_DOWN = {
    "database": "results stay in the Redis buffer and drain when it is back",
    "redis": "ingest waits for it",
}
WHILE_UP = "ingest resumes"


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
    taken = _batch_take(
        consumer=consumer,
        batch_size=batch_size,
        block_ms=block_ms,
        linger_ms=linger_ms,
        reclaim=reclaim,
    )
    return _batch_store(taken, using=using)


@dataclass
class _Taken:
    """A batch taken from the buffer and parsed: what its transaction needs."""

    entries: list[Entry]
    reclaimed: int
    parsed: Parsed = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    rows: list[WireRow] = field(default_factory=list)  # parsed's rows, in key order
    rendered: Rendered | None = None  # rows as LOAD DATA's file
    pings: list[PingRow] = field(default_factory=list)  # heartbeat pings (telemetry.pings)

    @property
    def results(self) -> int:
        return sum(entry.count for entry in self.entries)


def _batch_take(
    *,
    consumer: str,
    batch_size: int | None,
    block_ms: int | None,
    reclaim: bool | None,
    linger_ms: int,
    own_pending: bool = True,
    on_send: Callable[[], None] | None = None,
) -> _Taken:
    """Take and parse a batch, and render its file for LOAD DATA (``on_send``: see
    ``Rendered``): all the Python work that needs no database, so the pipeline can do
    it while the batch before is stored."""
    entries, reclaimed = buffer_take(
        consumer=consumer,
        count=batch_size or settings.TELEMETRY_INGEST_BATCH_SIZE,
        block_ms=block_ms,
        reclaim=reclaim,
        linger_ms=linger_ms,
        own_pending=own_pending,
    )
    if not entries:
        return _Taken(entries, reclaimed)
    parsed, dead = entries_parse(entries=entries)
    pings, dead_pings = entries_pings(entries=entries)
    # In key order, as the store inserts them: its own sort then finds them sorted, and
    # the file rendered here is the one it sends (unless it drops rows: duplicates,
    # unknown monitors).
    rows = sorted((row for _, entry_rows in parsed for row in entry_rows), key=_KEY)
    rendered = rows_render(rows, on_send=on_send)
    return _Taken(entries, reclaimed, parsed, dead + dead_pings, rows, rendered, pings)


_KEY = operator.itemgetter(0, 1)  # (monitor_id, scheduled_at): check_result's key


def _batch_store(taken: _Taken, *, using: str) -> BatchOutcome:
    """Store a taken batch in one transaction, then acknowledge its entries."""
    outcome = BatchOutcome(taken=taken.results, reclaimed=taken.reclaimed)
    if not taken.entries:
        return outcome
    stored, more_dead = _store_or_isolate(taken, using=using)
    dead = taken.dead + more_dead
    outcome.stored, outcome.duplicates = stored.stored, stored.duplicates
    outcome.dead_letters = len(dead)
    buffer_ack(entries=taken.entries, dead_letters=dead)
    if taken.rows:
        stats_record_ingest(
            client=buffer_client(),
            size=len(taken.rows),
            stored=stored.stored,
            duplicates=stored.duplicates,
            oldest_started_ms=min(row[2] for row in taken.rows),
            now=dt.datetime.now(dt.UTC),
        )
    return outcome


def _store_or_isolate(taken: _Taken, *, using: str) -> tuple[StoreOutcome, list[DeadLetter]]:
    """Store the batch; results for unknown monitors become dead letters. If MySQL
    refuses the data itself (not its availability), store one by one and dead-letter
    the refused ones, so one bad result cannot block the buffer."""
    try:
        outcome = rows_store(
            rows=taken.rows, using=using, rendered=taken.rendered, pings=taken.pings
        )
    except (DataError, IntegrityError):
        return _store_one_by_one(taken, using=using)
    dead = [
        _unknown_monitor_letter(entry, row)
        for entry, entry_rows in taken.parsed
        for row in entry_rows
        if row[0] in outcome.unknown_monitors
    ]
    return outcome, dead


def _unknown_monitor_letter(entry: Entry, row: WireRow) -> DeadLetter:
    reason = f"monitor {row[0]} does not exist (deleted?)"
    return DeadLetter(entry.entry_id, reason, orjson.dumps(row))


def _store_one_by_one(taken: _Taken, *, using: str) -> tuple[StoreOutcome, list[DeadLetter]]:
    total = StoreOutcome()
    dead: list[DeadLetter] = _store_pings_one_by_one(taken, using=using)
    for entry, entry_rows in taken.parsed:
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


def _store_pings_one_by_one(taken: _Taken, *, using: str) -> list[DeadLetter]:
    """Store a refused batch's pings one by one (before its results: a ping's result
    resumes a paused heartbeat only with its ping stored); dead letters for the refused."""
    dead: list[DeadLetter] = []
    for entry in taken.entries:
        if entry.ping is None:
            continue
        try:
            ping = ping_row_decode(entry.ping)
        except ValueError:
            continue  # a dead letter already (entries_pings)
        try:
            rows_store(rows=[], using=using, pings=[ping])
        except (DataError, IntegrityError) as exc:
            dead.append(DeadLetter(entry.entry_id, f"MySQL refused it: {exc}", entry.ping))
    return dead


def _batches(
    *,
    consumer: str,
    batch_size: int | None,
    block_ms: int | None,
    linger_ms: int,
    reclaim: bool | None,
    keep_going: Callable[[_Taken], bool],
    using: str,
) -> Iterator[BatchOutcome]:
    """Store batch after batch, yielding each one's outcome once it is committed and
    acknowledged, while a helper thread takes and parses the next one: MySQL works on
    one batch (LOAD DATA and COMMIT run without the GIL) while Python works on the
    next, on the other core.

    Only the taking runs ahead, so crash safety is ``ingest_batch``'s: each batch is
    stored in its own transaction on this thread's connection and acknowledged after
    its commit, in order. ``keep_going(batch)``, asked as a batch is handed over to be
    stored, says whether to take another. Every batch taken is stored before this
    ends, unless an error ends it (or the caller stops iterating): then the take in
    flight is waited for, and what it took stays pending for this consumer, whose next
    take of its own pending entries (the first of every run) gets it back.
    """
    sending = threading.Event()  # set as a batch's file goes to MySQL
    take = functools.partial(
        _batch_take,
        consumer=consumer,
        batch_size=batch_size,
        block_ms=block_ms,
        linger_ms=linger_ms,
        on_send=sending.set,
    )
    takes = _takes(take, reclaim=reclaim, keep_going=keep_going, sending=sending)
    for taken in prefetched(takes, name="ingest-take"):
        yield _batch_store(taken, using=using)


def _takes(
    take: Callable[..., _Taken],
    *,
    reclaim: bool | None,
    keep_going: Callable[[_Taken], bool],
    sending: threading.Event,
) -> Iterator[_Taken]:
    """Batches taken one after another by ``take`` (``_batch_take``), the first with
    this consumer's own pending entries, until ``keep_going`` says stop (``_batches``
    runs this on its helper thread)."""
    taken = take(reclaim=reclaim)
    yield taken
    while keep_going(taken):
        # Wait until the batch handed over is being sent to MySQL: the storing thread's
        # Python before it (the transaction's start, the checks of the batch) then runs
        # alone, instead of sharing the GIL with this thread while MySQL idles (a tenth
        # of a drain's time). A batch that never gets that far waits out the limit.
        if taken.rendered is not None:
            sending.wait(SEND_WAIT_SECONDS)
            sending.clear()
        # The batches before the one being stored are committed: add up their rollup
        # deltas while MySQL works, so that the fold need not.
        rollups_premerge()
        # This consumer's own pending entries are the batch being stored: skip them.
        taken = take(reclaim=None, own_pending=False)
        yield taken


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
    emptied = False
    for outcome in _batches(
        consumer=consumer,
        batch_size=batch_size,
        block_ms=None,
        # As the loop does: results keep arriving while a drain works, and without a
        # linger each batch held only what came during the one before.
        linger_ms=settings.TELEMETRY_INGEST_LINGER_MS,
        reclaim=True,
        keep_going=lambda taken: taken.results > 0 and time.monotonic() < deadline,
        using=using,
    ):
        total.add(outcome)
        emptied = outcome.taken == 0
        if between_batches and not emptied:
            between_batches()
    # Emptied the buffer: fold what is pending (bounded, as other ingestors may keep
    # appending); stopped by the deadline: one fold, the next drain does the rest.
    for _ in range(FOLDS_AFTER_DRAIN if emptied else 1):
        if not rollups_fold(using=using):
            break
    return total


def ingest_periodic(*, max_seconds: float = 20.0) -> BatchOutcome | None:
    """The Beat-scheduled drain: one at a time (a ``SET NX EX`` lock), so that a Beat
    hiccup delivering two runs at once cannot make two drains share the
    ``periodic`` consumer. Returns None when another run holds the lock, or when MySQL
    or Redis is away: the results wait in the buffer, the outage is said once (not at
    every run, every few seconds) and its end once, and the next run resumes."""
    client = buffer_client()
    token = f"{time.time_ns()}"
    ttl = int(max_seconds) + 30
    try:
        if client.exists(LOOP_ALIVE_KEY) and buffer_depth() < settings.TELEMETRY_INGEST_BATCH_SIZE:
            log.debug("ingest: a manage.py ingest loop keeps up; periodic drain skipped")
            return _reachable("redis")
        if not client.set(PERIODIC_LOCK_KEY, token, nx=True, ex=ttl):
            log.debug("ingest: another periodic drain is running; skipped")
            return _reachable("redis")
    except redis.RedisError as exc:
        unreachable_log(log, "redis", exc, WHILE_DOWN["redis"])
        return None
    try:
        outcome = ingest_drain(
            consumer=PERIODIC_CONSUMER,
            max_seconds=max_seconds,
            between_batches=lambda: _extend_lock(client, token, ttl),
        )
    except DatabaseError as exc:
        connections["default"].close()
        unreachable_log(log, "database", exc, WHILE_DOWN["database"])
        return None
    except redis.RedisError as exc:
        unreachable_log(log, "redis", exc, WHILE_DOWN["redis"])
        return None
    finally:
        _release_lock(client, token)
    _reachable("redis")
    return _reachable("database", outcome)


def _reachable(service: str, outcome: BatchOutcome | None = None) -> BatchOutcome | None:
    """Say that ``service`` is back if this drain said it was away; return ``outcome``."""
    reachable_log(log, service, WHILE_UP)
    return outcome


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
    """The long-lived loop of ``manage.py ingest``: batches as fast as they come
    (each taken while the one before is stored), blocking on the stream when it is
    empty, backing off while MySQL or Redis is down (one log line when an outage
    starts, one when it ends). ``should_stop`` is asked before each batch is stored:
    the batches in hand (that one, and the next if it was already being taken) are
    stored before the loop returns."""
    total = BatchOutcome()
    backoff = _Backoff()
    reclaim: bool | None = True  # at start-up; then every few seconds
    folded_at = time.monotonic()
    while not should_stop():
        try:
            connections[using].close_if_unusable_or_obsolete()
            for outcome in _batches(
                consumer=consumer,
                batch_size=batch_size,
                block_ms=IDLE_BLOCK_MS,
                linger_ms=settings.TELEMETRY_INGEST_LINGER_MS,
                reclaim=reclaim,
                keep_going=lambda _: not should_stop(),
                using=using,
            ):
                reclaim = None
                backoff.succeeded()
                total.add(outcome)
                buffer_client().set(LOOP_ALIVE_KEY, consumer, ex=LOOP_ALIVE_SECONDS)
                # Fold while idle, or at least every TELEMETRY_ROLLUP_FOLD_SECONDS when
                # busy: the longer the interval, the more checks each rollup write
                # carries. The next batch is being taken meanwhile.
                now = time.monotonic()
                if outcome.taken == 0 or now - folded_at >= settings.TELEMETRY_ROLLUP_FOLD_SECONDS:
                    rollups_fold(using=using)
                    folded_at = now
                connections[using].close_if_unusable_or_obsolete()
        except DatabaseError as exc:
            connections[using].close()
            backoff.failed("database", exc)
        except redis.RedisError as exc:
            backoff.failed("redis", exc)
    return total


class _Backoff:
    """Sleeps 0.5 s doubling to 15 s between failed attempts; says (and so counts) an
    outage once when it starts, and once when it ends (``core.reachability``)."""

    def __init__(self) -> None:
        self.delay = 0.0
        self.down: str | None = None  # the service away ("database", "redis")

    def failed(self, service: str, exc: BaseException) -> None:
        unreachable_log(log, service, exc, WHILE_DOWN[service])
        self.down = service
        self.delay = min(15.0, max(0.5, self.delay * 2))
        time.sleep(self.delay)

    def succeeded(self) -> None:
        if self.down:
            reachable_log(log, self.down, WHILE_UP)
        self.down = None
        self.delay = 0.0
