"""Ingest: drain the Redis buffer into MySQL, one transaction per batch.

A batch goes through four steps, and a crash between any two loses nothing:

1. **take** stream entries holding up to about N results through the stream's
   consumer group (``XREADGROUP``): they stay in this consumer's pending list until
   acknowledged. This consumer's own pending entries come first (a failed attempt,
   or its previous life), then entries a dead consumer left pending longer than
   ``TELEMETRY_INGEST_RECLAIM_SECONDS`` (``XAUTOCLAIM``), then new ones. The group
   hands each entry to one consumer, so ingestors run in parallel without sharing
   a batch.
2. **parse** each entry's wire rows strictly (``telemetry.records``); a malformed
   entry or row becomes a dead letter (with the reason) instead of blocking the batch.
3. **store** the batch in ONE MySQL transaction: the rows go into ``check_result``
   by one ``LOAD DATA LOCAL INFILE ... IGNORE`` (or, where the server refuses local
   files, one multi-row ``INSERT IGNORE``); the primary key ``(monitor_id,
   scheduled_at)`` makes a replayed result a no-op. One row of rollup deltas (an
   entry per check actually inserted, folded later) goes into ``check_rollup_pending``.
4. **ack**: dead letters, ``XACK``, ``XDEL`` and the depth counter in one Redis
   ``MULTI``.

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
import math
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

import MySQLdb
import orjson
import redis
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import (
    DatabaseError,
    DataError,
    IntegrityError,
    OperationalError,
    connections,
    transaction,
)

from core.db import MYSQL_LOCAL_INFILE_REFUSED
from core.reachability import short_error, unreachable_line
from telemetry.buffer import (
    COUNT_FIELD,
    DEAD_LETTER_COUNT_KEY,
    DEAD_LETTER_KEY,
    DEPTH_KEY,
    ENTRY_MAX_RESULTS,
    FIELD,
    GROUP,
    STREAM_KEY,
    buffer_client,
)
from telemetry.records import WIRE_FIELDS, WireRow, payload_decode, wire_rows_check
from telemetry.rollups import rollups_append, rollups_fold
from telemetry.stats import stats_record_ingest

log = logging.getLogger(__name__)

# The newest dead letters kept for inspection (the counter keeps the exact total): a
# broken probe release must not fill Redis' memory with garbage.
DEAD_LETTER_MAX = 100_000
# A result scheduled further ahead than this is a broken clock, not a check.
MAX_FUTURE_MS = 24 * 3600 * 1000
# Reclaiming scans the group's pending list; once every few seconds is plenty.
RECLAIM_EVERY_SECONDS = 5.0
# Consumers of the group with nothing pending and idle this long are forgotten.
FORGET_CONSUMER_AFTER_MS = 24 * 3600 * 1000
# Folds (of up to FOLD_MAX_PENDING batches each) after a drain that emptied the buffer.
FOLDS_AFTER_DRAIN = 10
PERIODIC_CONSUMER = "periodic"
PERIODIC_LOCK_KEY = "sentinel:ingest:periodic-lock"

COLUMNS = WIRE_FIELDS  # check_result's columns, in the order of a wire row

Key = tuple[int, int]  # (monitor_id, scheduled_at in epoch ms): the idempotency key


@dataclass(frozen=True)
class Entry:
    """One stream entry; ``raw`` is None when the entry was already deleted."""

    entry_id: str
    raw: bytes | None
    count: int = 1  # results it holds, as its pusher counted them


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
    taken: int = 0  # results in the entries taken
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
    """Take entries holding up to about ``count`` results for ``consumer`` (whole
    entries, so a batch may pass ``count`` by part of one); returns (entries,
    results reclaimed).

    ``reclaim=None`` reclaims dead consumers' entries at most every few seconds;
    True forces it (start-up), False skips it. Once new entries arrive, keep taking
    for up to ``linger_ms`` until they hold ``count`` results: a trickle of results
    becomes a few large transactions instead of many small ones.
    """
    client = buffer_client()
    _ensure_group(client)
    # This consumer's own pending entries are what it took before: one batch or two.
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
        _last_reclaim[consumer] = now
        claimed = _reclaim(client, consumer=consumer, count=first)
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
        entries.append(Entry(text_id, fields.get(FIELD, b""), _int(fields.get(COUNT_FIELD))))
    return entries


def _int(raw: bytes | None) -> int:
    try:
        return max(1, int(raw)) if raw is not None else 1
    except ValueError:
        return 1


# --- 2. parse -------------------------------------------------------------------

Parsed = list[tuple[Entry, list[WireRow]]]  # each entry with its valid rows


def entries_parse(
    *, entries: Sequence[Entry], now: dt.datetime | None = None
) -> tuple[Parsed, list[DeadLetter]]:
    """Split entries into valid rows and dead letters (deleted entries are neither):
    an unreadable entry is one dead letter, an invalid row of a readable one another."""
    now_ms = round((now or dt.datetime.now(dt.UTC)).timestamp() * 1000)
    oldest_ms = now_ms - settings.TELEMETRY_RETENTION_DAYS * 86_400_000
    parsed: Parsed = []
    dead: list[DeadLetter] = []
    for entry in entries:
        if entry.raw is None:
            continue
        try:
            if not entry.raw:
                raise ValueError(f"entry has no {FIELD.decode()!r} field")
            rows = payload_decode(entry.raw)
        except ValueError as exc:
            dead.append(DeadLetter(entry.entry_id, str(exc), entry.raw))
            continue
        good, bad = wire_rows_check(rows, oldest_ms=oldest_ms, newest_ms=now_ms + MAX_FUTURE_MS)
        dead += [DeadLetter(entry.entry_id, why, orjson.dumps(row)) for row, why in bad]
        if good:
            parsed.append((entry, good))
    return parsed, dead


# --- 3. store -------------------------------------------------------------------


class _PartialReplay(Exception):
    """Some, not all, rows of the batch were stored before: take the careful path."""


@dataclass
class StoreOutcome:
    stored: int = 0
    duplicates: int = 0
    unknown_monitors: set[int] = field(default_factory=set)


def rows_store(*, rows: Sequence[WireRow], using: str = "default") -> StoreOutcome:
    """Store checked wire rows in one transaction: the raw rows plus the rollup deltas
    of the new ones.

    The common cases cost one transaction: every row new (a fresh batch) or none new
    (a replayed batch). A batch that is partly stored already (a result pushed twice
    by a probe worker's retry) is redone in a second transaction that first reads
    which keys exist, with locks, so the rollups count each check exactly once.
    Raises ``django.db.Error`` when MySQL fails; nothing is then stored.
    """
    try:
        return _store(rows, using=using, locking=False)
    except _PartialReplay:
        return _store(rows, using=using, locking=True)


def _store(rows: Sequence[WireRow], *, using: str, locking: bool) -> StoreOutcome:
    connection = connections[using]
    outcome = StoreOutcome()
    with transaction.atomic(using=using), connection.wrap_database_errors:
        # The DB-API cursor, not Django's: in DEBUG Django would keep the text of
        # every 150 kB statement in connection.queries.
        cursor = connection.connection.cursor()
        try:
            by_key: dict[Key, WireRow] = {}
            for row in rows:  # the first result of a key wins within a batch
                if (key := (row[0], row[1])) not in by_key:
                    by_key[key] = row
            unknown = _unknown_monitors(cursor, {m for m, _ in by_key}, using=using)
            if unknown:
                by_key = {key: row for key, row in by_key.items() if key[0] not in unknown}
            if locking:
                for key in _existing_keys(cursor, list(by_key)):
                    del by_key[key]
            # In primary key order: fewer page splits, and two ingestors lock in the
            # same order.
            ordered = [by_key[key] for key in sorted(by_key)]
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
    outcome.unknown_monitors = unknown
    outcome.stored = len(ordered)
    unknown_rows = sum(1 for r in rows if r[0] in unknown) if unknown else 0
    outcome.duplicates = len(rows) - outcome.stored - unknown_rows
    return outcome


# Which monitor ids exist, given the batch's cursor and ids: asked of the app that owns
# monitors, which registers it when Django starts (``MonitorsConfig.ready``), because
# the result store sits below monitor configuration and imports none of it.
ExistingMonitors = Callable[[Any, set[int]], set[int]]
_existing_monitors: ExistingMonitors | None = None


def existing_monitors_register(query: ExistingMonitors) -> None:
    """Tell ingest how to find which of a batch's monitor ids exist; ``query(cursor,
    ids)`` returns the subset that does, on the batch's own connection."""
    global _existing_monitors
    _existing_monitors = query


def _unknown_monitors(cursor: Any, monitor_ids: set[int], *, using: str) -> set[int]:
    """Monitors of the batch that do not exist (deleted since the check ran)."""
    known = _known_monitors.setdefault(using, _KnownMonitors())
    missing = known.missing(monitor_ids)
    if not missing:
        return set()
    if _existing_monitors is None:
        raise ImproperlyConfigured("the monitors app is not installed: ingest cannot tell")
    found = _existing_monitors(cursor, missing)
    known.ids |= found
    return missing - found


class _KnownMonitors:
    """Monitor ids this process has seen in the database, so that a batch asks MySQL
    only about ids it has not seen (looking up a thousand ids was a tenth of ingest's
    time). Forgotten when any monitor is deleted (a counter in Redis, bumped after the
    deletion commits: ``monitor_deleted``) and at least every ``KNOWN_MONITORS_MAX_AGE``
    seconds, in case a bump was lost while Redis was away."""

    def __init__(self) -> None:
        self.ids: set[int] = set()
        self.generation: Any = None  # the counter as Redis returned it
        self.since = time.monotonic()

    def missing(self, monitor_ids: set[int]) -> set[int]:
        generation = buffer_client().get(MONITORS_DELETED_KEY)
        now = time.monotonic()
        stale = now - self.since > KNOWN_MONITORS_MAX_AGE or len(self.ids) > KNOWN_MONITORS_MAX
        if generation != self.generation or stale:
            self.ids, self.generation, self.since = set(), generation, now
        return monitor_ids - self.ids


MONITORS_DELETED_KEY = "sentinel:monitors:deleted"
KNOWN_MONITORS_MAX_AGE = 300.0
KNOWN_MONITORS_MAX = 5_000_000
_known_monitors: dict[str, _KnownMonitors] = {}


def monitor_deleted(**_: Any) -> None:
    """``post_delete`` of a monitor: once the deletion commits, every ingest process
    forgets the monitors it knew, so the deleted one's late results become dead
    letters rather than orphan rows."""
    transaction.on_commit(_bump_monitors_deleted, robust=True)


def _bump_monitors_deleted() -> None:
    try:
        buffer_client().incr(MONITORS_DELETED_KEY)
    except redis.RedisError as exc:
        log.warning(
            "%s",
            unreachable_line(
                "redis",
                exc,
                "ingest processes forget the deleted monitor within "
                f"{KNOWN_MONITORS_MAX_AGE:.0f} s anyway",
            ),
        )


_EPOCH = dt.datetime(1970, 1, 1)
_MILLISECOND = dt.timedelta(milliseconds=1)


def _existing_keys(cursor: Any, keys: list[Key]) -> set[Key]:
    """Keys already stored, locked until commit (the locking read also locks the gaps
    of the missing keys, so a concurrent ingestor cannot insert them meanwhile)."""
    if not keys:
        return set()
    placeholders = ", ".join(["(%s, %s)"] * len(keys))
    sql = "SELECT monitor_id, scheduled_at FROM check_result WHERE (monitor_id, scheduled_at)"
    cursor.execute(
        f"{sql} IN ({placeholders}) FOR UPDATE",  # placeholders only
        [value for m, s in keys for value in (m, _datetime_text(s))],
    )
    return {(int(m), (s - _EPOCH) // _MILLISECOND) for m, s in cursor.fetchall()}


def _insert_results(cursor: Any, rows: list[WireRow]) -> int:
    """Insert the rows, skipping keys already stored; returns how many were new.

    ``LOAD DATA LOCAL INFILE`` of a tab-separated file is MySQL's fastest way in, a
    few times faster than a multi-row INSERT of the same rows; where the server or
    client refuses local files (MySQL 8's default, or
    ``TELEMETRY_INGEST_LOAD_DATA=false``) one multi-row INSERT IGNORE does it.
    """
    if not rows:
        return 0
    if settings.TELEMETRY_INGEST_LOAD_DATA and not _load_data_refused:
        try:
            return _load_data(cursor, rows)
        except MySQLdb.Error as exc:
            if not exc.args or exc.args[0] not in MYSQL_LOCAL_INFILE_REFUSED:
                raise
            _refuse_load_data(exc)
    return _insert_values(cursor, rows)


_load_data_refused = False


def _refuse_load_data(exc: MySQLdb.Error) -> None:
    global _load_data_refused
    _load_data_refused = True
    log.warning(
        "MySQL refuses LOAD DATA LOCAL (%s); ingest uses multi-row INSERT, a few times "
        "slower (enable local_infile on the server, or set TELEMETRY_INGEST_LOAD_DATA=false "
        "to silence this)",
        short_error(exc),
    )


_LOAD_DATA = (
    "LOAD DATA LOCAL INFILE %s IGNORE INTO TABLE check_result CHARACTER SET utf8mb4 "
    "FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' "
    f"({', '.join(COLUMNS)})"
)


def _load_data(cursor: Any, rows: list[WireRow]) -> int:
    scratch = _scratch_file()
    scratch.seek(0)
    scratch.truncate()
    scratch.write(_tsv(rows))
    scratch.flush()
    # The client library opens the path and sends the file: /dev/fd/N is this
    # process's own descriptor, so no other process can read or swap the data.
    cursor.execute(_LOAD_DATA, [f"/dev/fd/{scratch.fileno()}"])
    return int(cursor.rowcount)


_scratch = threading.local()


def _scratch_file() -> IO[bytes]:
    """This thread's file for LOAD DATA: unnamed (deleted as it is created), so it
    leaves nothing behind when the process dies, and reused for every batch."""
    handle: IO[bytes] | None = getattr(_scratch, "handle", None)
    if handle is None:
        # Open for the thread's life, on purpose: no context manager.
        handle = _scratch.handle = tempfile.TemporaryFile(prefix="sentinel-ingest-")  # noqa: SIM115
    return handle


def _tsv(rows: list[WireRow]) -> bytes:
    """The rows as LOAD DATA reads them: tab-separated, \\N for NULL. Rows are
    checked (``wire_rows_check``): ints are ints and the failure kind is a known
    word, so only the error text can hold a character to escape."""
    text = _datetime_text
    return "".join(
        [
            f"{m}\t{text(s)}\t{text(st)}\t{d}\t{1 if ok else 0}\t{_N if sc is None else sc}\t"
            f"{_N if f is None else f}\t{_tsv_text(e)}\t{_N if a is None else a}\t"
            f"{_N if b is None else b}\t{_N if c is None else c}\t{_N if t is None else t}\t"
            f"{_N if x is None else text(x)}\n"
            for m, s, st, d, ok, sc, f, e, a, b, c, t, x in rows
        ]
    ).encode()


_N = "\\N"


def _tsv_text(value: str) -> str:
    if "\\" in value or "\t" in value or "\n" in value:
        return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
    return value


def _insert_values(cursor: Any, rows: list[WireRow]) -> int:
    """One INSERT IGNORE for the batch, whatever its size (mysqlclient's executemany
    would split it into 64 kB statements), rendered here rather than by mysqlclient's
    parameter substitution, which quotes each of the 13 values of a row."""
    escape = cursor.connection.string_literal
    text = _datetime_text
    values = ",".join(
        f"({m},'{text(s)}','{text(st)}',{d},{1 if ok else 0},{_sql_int(sc)},"
        f"{'NULL' if f is None else repr(f)},{escape(e.encode()).decode()},{_sql_int(a)},"
        f"{_sql_int(b)},{_sql_int(c)},{_sql_int(t)},{'NULL' if x is None else repr(text(x))})"
        for m, s, st, d, ok, sc, f, e, a, b, c, t, x in rows
    )
    # Every value above is an int, a formatted datetime or an escaped string literal.
    sql = f"INSERT IGNORE INTO check_result ({', '.join(COLUMNS)}) VALUES {values}"  # noqa: S608
    cursor.execute(sql)
    return int(cursor.rowcount)


def _sql_int(value: int | None) -> str:
    return "NULL" if value is None else str(value)


# A batch's times fall in a few seconds: format each second once (DATETIME(3) text).
_SECOND_TEXT: dict[int, str] = {}
_MILLISECOND_TEXT = [f".{n:03d}" for n in range(1000)]


def _datetime_text(epoch_ms: int) -> str:
    second, millisecond = divmod(epoch_ms, 1000)
    prefix = _SECOND_TEXT.get(second)
    if prefix is None:
        if len(_SECOND_TEXT) >= 100_000:
            _SECOND_TEXT.clear()
        prefix = _SECOND_TEXT[second] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(second))
    return prefix + _MILLISECOND_TEXT[millisecond]


# --- 4. ack ---------------------------------------------------------------------

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
    ids = [entry.entry_id for entry in entries]
    counts = [entry.count for entry in entries]
    _ack_script(client)(keys=[STREAM_KEY, DEPTH_KEY], args=[GROUP, *ids, *counts], client=pipe)
    pipe.execute()


_ACK_SCRIPTS: dict[int, Any] = {}


def _ack_script(client: redis.Redis) -> Any:
    script = _ACK_SCRIPTS.get(id(client))
    if script is None:
        script = _ACK_SCRIPTS[id(client)] = client.register_script(_ACK)
    return script


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
    return unreachable_line(
        "database", exc, "results stay in the Redis buffer and drain when it is back"
    )


def redis_down_line(exc: BaseException) -> str:
    """One line for the log when Redis fails under ingest."""
    return unreachable_line("redis", exc, "ingest waits for it")


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
