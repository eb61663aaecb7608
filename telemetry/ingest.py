"""Ingest: drain the Redis buffer into MySQL, one transaction per batch.

A batch goes through four steps, and a crash between any two loses nothing:

1. **take** up to N entries through the stream's consumer group (``XREADGROUP``):
   they stay in this consumer's pending list until acknowledged. This consumer's own
   pending entries come first (a failed attempt, or its previous life), then entries
   a dead consumer left pending longer than ``TELEMETRY_INGEST_RECLAIM_SECONDS``
   (``XAUTOCLAIM``), then new ones. The group hands each entry to one consumer, so
   ingestors run in parallel without sharing a batch.
2. **parse** each entry strictly; a malformed one becomes a dead letter (with the
   reason) instead of blocking the batch.
3. **store** the batch in ONE MySQL transaction: one multi-row ``INSERT IGNORE`` into
   ``check_result`` (primary key ``(monitor_id, scheduled_at)``, so a replayed result
   is ignored) and one row of rollup deltas (the aggregates of the rows that were
   actually inserted) into ``check_rollup_pending``.
4. **ack**: dead letters, ``XACK`` and ``XDEL`` in one Redis ``MULTI``.

If the process dies before step 3 commits, the entries are still pending and are
taken again; if it dies after the commit but before step 4, they are stored again,
which inserts nothing and appends no delta.

The deltas reach the hourly and daily rollups through ``telemetry.rollups.rollups_fold``,
which the drain runs when it ends and the long-lived loop runs when the buffer is
empty or every ``TELEMETRY_ROLLUP_FOLD_SECONDS``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
from django.conf import settings
from django.db import (
    DatabaseError,
    DataError,
    IntegrityError,
    OperationalError,
    connections,
    transaction,
)

from monitors.models import Monitor
from sentinel.services import redact_url, short_error
from telemetry.buffer import (
    DEAD_LETTER_COUNT_KEY,
    DEAD_LETTER_KEY,
    FIELD,
    GROUP,
    STREAM_KEY,
    buffer_client,
)
from telemetry.records import CheckResult
from telemetry.rollups import rollups_append, rollups_fold
from telemetry.stats import stats_record_ingest

log = logging.getLogger(__name__)

# The newest dead letters kept for inspection (the counter keeps the exact total): a
# broken probe release must not fill Redis' memory with garbage.
DEAD_LETTER_MAX = 100_000
# Limits of the columns (telemetry/migrations/sql/0001_check_result.sql). INSERT
# IGNORE would clip an out-of-range value to a warning, so they are checked here.
INT_UNSIGNED_MAX = 2**32 - 1
BIGINT_MAX = 2**63 - 1
SMALLINT_UNSIGNED_MAX = 2**16 - 1
# A result scheduled further ahead than this is a broken clock, not a check.
MAX_FUTURE = dt.timedelta(days=1)
# Reclaiming scans the group's pending list; once every few seconds is plenty.
RECLAIM_EVERY_SECONDS = 5.0
# Consumers of the group with nothing pending and idle this long are forgotten.
FORGET_CONSUMER_AFTER_MS = 24 * 3600 * 1000
# Folds (of up to FOLD_MAX_PENDING batches each) after a drain that emptied the buffer.
FOLDS_AFTER_DRAIN = 10
PERIODIC_CONSUMER = "periodic"
PERIODIC_LOCK_KEY = "sentinel:ingest:periodic-lock"

COLUMNS = (
    "monitor_id",
    "scheduled_at",
    "started_at",
    "duration_ms",
    "ok",
    "status_code",
    "failure",
    "error",
    "dns_ms",
    "connect_ms",
    "tls_ms",
    "ttfb_ms",
    "tls_expires_at",
)

Row = tuple[Any, ...]  # one check_result row, in COLUMNS order
Key = tuple[int, dt.datetime]  # (monitor_id, scheduled_at): the idempotency key


@dataclass(frozen=True)
class Entry:
    """One stream entry; ``raw`` is None when the entry was already deleted."""

    entry_id: str
    raw: bytes | None


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


@dataclass
class BatchOutcome:
    taken: int = 0
    reclaimed: int = 0  # of those, taken over from a dead consumer
    stored: int = 0  # rows inserted into check_result
    duplicates: int = 0  # results already stored (a replay)
    dead_letters: int = 0

    def add(self, other: BatchOutcome) -> None:
        for name in ("taken", "reclaimed", "stored", "duplicates", "dead_letters"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


# --- 1. take --------------------------------------------------------------------

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
) -> tuple[list[Entry], int]:
    """Take up to ``count`` entries for ``consumer``; returns (entries, reclaimed).

    ``reclaim=None`` reclaims dead consumers' entries at most every few seconds;
    True forces it (start-up), False skips it. Once new entries arrive, keep taking
    for up to ``linger_ms`` until there are ``count``: a trickle of results becomes a
    few large transactions instead of many small ones.
    """
    client = buffer_client()
    _ensure_group(client)
    own = _entries(client.xreadgroup(GROUP, consumer, {STREAM_KEY: "0"}, count=count))
    if own:
        return own, 0
    now = time.monotonic()
    if reclaim or (
        reclaim is None and now - _last_reclaim.get(consumer, 0.0) >= RECLAIM_EVERY_SECONDS
    ):
        _last_reclaim[consumer] = now
        claimed = _reclaim(client, consumer=consumer, count=count)
        if claimed:
            return claimed, len(claimed)
    fresh = _entries(
        client.xreadgroup(GROUP, consumer, {STREAM_KEY: ">"}, count=count, block=block_ms)
    )
    deadline = now + linger_ms / 1000
    while fresh and len(fresh) < count and (left := deadline - time.monotonic()) > 0:
        more = client.xreadgroup(
            GROUP, consumer, {STREAM_KEY: ">"}, count=count - len(fresh), block=int(left * 1000) + 1
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
        log.info("reclaimed %d results left pending by a dead ingest consumer", len(claimed))
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
        # A deleted entry still pending comes back with no fields (an entry always
        # has at least one); an entry without our field is malformed (b"").
        raw = fields.get(FIELD, b"") if fields else None
        entries.append(Entry(text_id, raw))
    return entries


# --- 2. parse -------------------------------------------------------------------


def entries_parse(
    *, entries: Sequence[Entry], now: dt.datetime | None = None
) -> tuple[list[tuple[Entry, CheckResult]], list[DeadLetter]]:
    """Split entries into results and dead letters (deleted entries are neither)."""
    now = now or dt.datetime.now(dt.UTC)
    oldest = now - dt.timedelta(days=settings.TELEMETRY_RETENTION_DAYS)
    good: list[tuple[Entry, CheckResult]] = []
    dead: list[DeadLetter] = []
    for entry in entries:
        if entry.raw is None:
            continue
        try:
            if not entry.raw:
                raise ValueError(f"entry has no {FIELD.decode()!r} field")
            result = CheckResult.from_json(entry.raw)
            _check_ranges(result, oldest=oldest, newest=now + MAX_FUTURE)
        except (ValueError, OverflowError, OSError) as exc:
            dead.append(DeadLetter(entry.entry_id, str(exc), entry.raw))
            continue
        good.append((entry, result))
    return good, dead


def _check_ranges(result: CheckResult, *, oldest: dt.datetime, newest: dt.datetime) -> None:
    if result.monitor_id > BIGINT_MAX:
        raise ValueError(f"monitor_id {result.monitor_id} is out of range")
    for name in ("duration_ms", "dns_ms", "connect_ms", "tls_ms", "ttfb_ms"):
        value = getattr(result, name)
        if value is not None and value > INT_UNSIGNED_MAX:
            raise ValueError(f"{name} {value} is out of range")
    if result.status_code is not None and result.status_code > SMALLINT_UNSIGNED_MAX:
        raise ValueError(f"status_code {result.status_code} is out of range")
    if not oldest <= result.scheduled_at <= newest:
        raise ValueError(
            f"scheduled_at {result.scheduled_at.isoformat()} is outside the stored window "
            f"(retention {settings.TELEMETRY_RETENTION_DAYS} days, at most a day ahead)"
        )


# --- 3. store -------------------------------------------------------------------


class _PartialReplay(Exception):
    """Some, not all, rows of the batch were stored before: take the careful path."""


@dataclass
class StoreOutcome:
    stored: int = 0
    duplicates: int = 0
    unknown_monitors: set[int] = field(default_factory=set)


def results_store(
    *, results: Sequence[CheckResult], using: str = "default", on_commit_check: bool = True
) -> StoreOutcome:
    """Store results in one transaction: raw rows plus the rollup deltas of the new ones.

    The common cases cost one transaction: every row new (a fresh batch) or none new
    (a replayed batch). A batch that is partly stored already (a result pushed twice
    by a probe worker's retry) is redone in a second transaction that first reads
    which keys exist, with locks, so the rollups count each check exactly once.
    Raises ``django.db.Error`` when MySQL fails; nothing is then stored.
    """
    try:
        return _store(results, using=using, locking=False)
    except _PartialReplay:
        return _store(results, using=using, locking=True)


def _store(results: Sequence[CheckResult], *, using: str, locking: bool) -> StoreOutcome:
    connection = connections[using]
    outcome = StoreOutcome()
    with transaction.atomic(using=using), connection.wrap_database_errors:
        # The DB-API cursor, not Django's: in DEBUG Django would keep the text of
        # every 150 kB INSERT in connection.queries.
        cursor = connection.connection.cursor()
        try:
            rows = _rows(results)
            outcome.unknown_monitors = _unknown_monitors(cursor, {key[0] for key in rows})
            rows = {k: r for k, r in rows.items() if k[0] not in outcome.unknown_monitors}
            if locking:
                for key in _existing_keys(cursor, list(rows)):
                    del rows[key]
            ordered = [rows[key] for key in sorted(rows)]
            inserted = _insert_results(cursor, ordered)
            if inserted != len(ordered):
                if locking:
                    # Cannot happen while the locking read holds the keys; retry later.
                    raise OperationalError("check_result changed under a locking read")
                if inserted != 0:
                    raise _PartialReplay
                ordered = []  # the whole batch is a replay
            rollups_append(cursor=cursor, rows=ordered)
        finally:
            cursor.close()
    outcome.stored = len(ordered)
    outcome.duplicates = len(results) - outcome.stored - _count_for(results, outcome)
    return outcome


def _count_for(results: Sequence[CheckResult], outcome: StoreOutcome) -> int:
    return sum(1 for r in results if r.monitor_id in outcome.unknown_monitors)


def _naive_utc(moment: dt.datetime | None) -> dt.datetime | None:
    # DATETIME(3) columns hold UTC without a zone, to the millisecond: the key kept
    # here must be the key MySQL stores (the buffer's JSON has ms anyway).
    if moment is None:
        return None
    if moment.tzinfo is dt.UTC and not moment.microsecond % 1000:
        return moment.replace(tzinfo=None)  # as decoded from the buffer: the common case
    return moment.astimezone(dt.UTC).replace(
        tzinfo=None, microsecond=moment.microsecond // 1000 * 1000
    )


def _rows(results: Sequence[CheckResult]) -> dict[Key, Row]:
    """One row per idempotency key (the first result wins within a batch)."""
    rows: dict[Key, Row] = {}
    for r in results:
        scheduled = _naive_utc(r.scheduled_at)
        assert scheduled is not None
        key = (r.monitor_id, scheduled)
        if key in rows:
            continue
        rows[key] = (
            r.monitor_id,
            scheduled,
            _naive_utc(r.started_at),
            r.duration_ms,
            1 if r.ok else 0,
            r.status_code,
            r.failure.value if r.failure else None,
            r.error,
            r.dns_ms,
            r.connect_ms,
            r.tls_ms,
            r.ttfb_ms,
            _naive_utc(r.tls_expires_at),
        )
    return rows


def _unknown_monitors(cursor: Any, monitor_ids: set[int]) -> set[int]:
    """Monitors of the batch that do not exist (deleted since the check ran)."""
    if not monitor_ids:
        return set()
    ids = sorted(monitor_ids)
    placeholders = ", ".join(["%s"] * len(ids))
    cursor.execute(
        # Only placeholders and a model's table name are formatted into the SQL.
        f"SELECT id FROM {Monitor._meta.db_table} WHERE id IN ({placeholders})",  # noqa: S608
        ids,
    )
    return monitor_ids - {row[0] for row in cursor.fetchall()}


def _existing_keys(cursor: Any, keys: list[Key]) -> set[Key]:
    """Keys already stored, locked until commit (the locking read also locks the gaps
    of the missing keys, so a concurrent ingestor cannot insert them meanwhile)."""
    if not keys:
        return set()
    placeholders = ", ".join(["(%s, %s)"] * len(keys))
    sql = "SELECT monitor_id, scheduled_at FROM check_result WHERE (monitor_id, scheduled_at)"
    cursor.execute(
        f"{sql} IN ({placeholders}) FOR UPDATE",  # placeholders only
        [value for key in keys for value in key],
    )
    return {(int(m), s) for m, s in cursor.fetchall()}


def _insert_results(cursor: Any, rows: list[Row]) -> int:
    """One INSERT IGNORE for the batch, whatever its size (mysqlclient's executemany
    would split it into 64 kB statements); returns how many rows were new.

    The VALUES list is rendered here rather than by mysqlclient's parameter
    substitution, which calls ``literal()`` once per value (13 values a row) and was
    most of the ingest time; only the two text columns need escaping.
    """
    if not rows:
        return 0
    escape = cursor.connection.string_literal
    values = ",".join(
        # failure is a FailureKind value (a fixed word), so only error needs escaping.
        f"({m},{_dt(s)},{_dt(st)},{d},{ok},{_int(sc)},{'NULL' if f is None else repr(f)},"
        f"{_text(escape, e)},{_int(a)},{_int(b)},{_int(c)},{_int(t)},{_dt(x)})"
        for m, s, st, d, ok, sc, f, e, a, b, c, t, x in rows
    )
    # Every value above is an int, a formatted datetime or an escaped string literal.
    sql = f"INSERT IGNORE INTO check_result ({', '.join(COLUMNS)}) VALUES {values}"  # noqa: S608
    cursor.execute(sql)
    return int(cursor.rowcount)


def _int(value: int | None) -> str:
    # Only ints reach here (CheckResult.from_dict checks the types).
    return "NULL" if value is None else str(int(value))


def _dt(value: dt.datetime | None) -> str:
    return "NULL" if value is None else f"'{value.isoformat(' ')}'"


def _text(escape: Callable[[bytes], bytes], value: str | None) -> str:
    if not value:
        return "NULL" if value is None else "''"
    return escape(value.encode()).decode()


# --- 4. ack ---------------------------------------------------------------------


def buffer_ack(*, entry_ids: Sequence[str], dead_letters: Sequence[DeadLetter]) -> None:
    """Dead-letter, acknowledge and delete a stored batch, atomically (MULTI)."""
    if not entry_ids:
        return
    pipe = buffer_client().pipeline(transaction=True)
    if dead_letters:
        pipe.lpush(DEAD_LETTER_KEY, *(d.to_json() for d in dead_letters))
        pipe.ltrim(DEAD_LETTER_KEY, 0, DEAD_LETTER_MAX - 1)
        pipe.incrby(DEAD_LETTER_COUNT_KEY, len(dead_letters))
    pipe.xack(STREAM_KEY, GROUP, *entry_ids)
    pipe.xdel(STREAM_KEY, *entry_ids)
    pipe.execute()


# --- The batch, the drain, the loop ---------------------------------------------


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
    outcome = BatchOutcome(taken=len(entries), reclaimed=reclaimed)
    if not entries:
        return outcome
    parsed, dead = entries_parse(entries=entries)
    stored, more_dead = _store_or_isolate(parsed, using=using)
    dead += more_dead
    outcome.stored, outcome.duplicates = stored.stored, stored.duplicates
    outcome.dead_letters = len(dead)
    buffer_ack(entry_ids=[e.entry_id for e in entries], dead_letters=dead)
    stats_record_ingest(
        client=buffer_client(),
        results=[result for _, result in parsed],
        now=dt.datetime.now(dt.UTC),
    )
    return outcome


def _store_or_isolate(
    parsed: list[tuple[Entry, CheckResult]], *, using: str
) -> tuple[StoreOutcome, list[DeadLetter]]:
    """Store the batch; results for unknown monitors become dead letters. If MySQL
    refuses the data itself (not its availability), store one by one and dead-letter
    the refused ones, so one bad result cannot block the buffer."""
    results = [result for _, result in parsed]
    try:
        outcome = results_store(results=results, using=using)
    except (DataError, IntegrityError):
        return _store_one_by_one(parsed, using=using)
    dead = [
        DeadLetter(e.entry_id, f"monitor {r.monitor_id} does not exist (deleted?)", e.raw or b"")
        for e, r in parsed
        if r.monitor_id in outcome.unknown_monitors
    ]
    return outcome, dead


def _store_one_by_one(
    parsed: list[tuple[Entry, CheckResult]], *, using: str
) -> tuple[StoreOutcome, list[DeadLetter]]:
    total = StoreOutcome()
    dead: list[DeadLetter] = []
    for entry, result in parsed:
        try:
            one, more_dead = _store_or_isolate_one(entry, result, using=using)
        except (DataError, IntegrityError) as exc:
            dead.append(DeadLetter(entry.entry_id, f"MySQL refused it: {exc}", entry.raw or b""))
            continue
        total.stored += one.stored
        total.duplicates += one.duplicates
        dead += more_dead
    return total, dead


def _store_or_isolate_one(
    entry: Entry, result: CheckResult, *, using: str
) -> tuple[StoreOutcome, list[DeadLetter]]:
    outcome = results_store(results=[result], using=using)
    if outcome.unknown_monitors:
        reason = f"monitor {result.monitor_id} does not exist (deleted?)"
        return outcome, [DeadLetter(entry.entry_id, reason, entry.raw or b"")]
    return outcome, []


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
        log.warning(mysql_down_line(exc))
        return None
    except redis.RedisError as exc:
        log.warning(redis_down_line(exc))
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


def mysql_down_line(exc: BaseException) -> str:
    """One line for the log when MySQL fails under ingest."""
    return (
        f"MySQL at {redact_url(settings.DATABASE_URL)} failed during ingest "
        f"({short_error(exc)}); results stay in the Redis buffer and drain when it is back"
    )


def redis_down_line(exc: BaseException) -> str:
    return (
        f"Redis is unreachable at {redact_url(settings.REDIS_URL)} ({short_error(exc)}); "
        "ingest waits for it"
    )


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
            backoff.failed("MySQL", mysql_down_line(exc))
            continue
        except redis.RedisError as exc:
            backoff.failed("Redis", redis_down_line(exc))
            continue
        first = False
        backoff.succeeded()
        total.add(outcome)
    return total


class _Backoff:
    """Sleeps 0.5 s doubling to 15 s between failed attempts; logs transitions."""

    def __init__(self) -> None:
        self.delay = 0.0
        self.down: str | None = None

    def failed(self, service: str, line: str) -> None:
        if self.down != service:
            log.warning(line)
            self.down = service
        self.delay = min(15.0, max(0.5, self.delay * 2))
        time.sleep(self.delay)

    def succeeded(self) -> None:
        if self.down:
            log.info("%s is back; ingest resumes", self.down)
        self.down = None
        self.delay = 0.0
