"""Store a batch's rows in one MySQL transaction: ``LOAD DATA LOCAL INFILE`` (or one
multi-row ``INSERT IGNORE``) into ``check_result`` plus the rollup deltas of the new
rows; the primary key makes a replayed result a no-op.
"""

from __future__ import annotations

import logging
import operator
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

import MySQLdb
import redis
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import (
    OperationalError,
    connections,
    transaction,
)

from core.db import MYSQL_LOCAL_INFILE_REFUSED, retry_on_deadlock
from core.reachability import short_error, unreachable_log
from core.time import as_utc, to_epoch_ms
from telemetry.buffer import buffer_client
from telemetry.pings import PingRow, pings_insert
from telemetry.records import STORED_FIELDS, WIRE_FIELDS, WireRow
from telemetry.rollups import rollups_append
from telemetry.signals import pings_stored, results_stored

log = logging.getLogger(__package__)  # one logger for the package, as before the split

COLUMNS = STORED_FIELDS  # check_result's columns, in a wire row's order
REGION = WIRE_FIELDS.index("region")

# (monitor_id, scheduled_at in epoch ms, region): the idempotency key
Key = tuple[int, int, str]


class _PartialReplay(Exception):
    """Some, not all, rows of the batch were stored before: take the careful path."""


@dataclass
class StoreOutcome:
    stored: int = 0
    duplicates: int = 0
    unknown_monitors: set[int] = field(default_factory=set)


def rows_store(
    *,
    rows: Sequence[WireRow],
    using: str = "default",
    rendered: Rendered | None = None,
    pings: Sequence[PingRow] = (),
) -> StoreOutcome:
    """Store checked wire rows in one transaction: the raw rows plus the rollup deltas
    of the new ones. ``rendered`` (``rows_render``) is their file for LOAD DATA,
    made ahead of the transaction; it is used when the rows to insert are exactly
    the ones it renders.

    The common cases cost one transaction: every row new (a fresh batch) or none new
    (a replayed batch). A batch that is partly stored already (a result pushed twice
    by a probe worker's retry) is redone in a second transaction that first reads
    which keys exist, with locks, so the rollups count each check exactly once.
    ``pings`` (heartbeat pings, ``telemetry.pings``) go into ``heartbeat_ping`` in
    the same transaction, before the rows, and ``pings_stored`` is sent with them.
    Raises ``django.db.Error`` when MySQL fails; nothing is then stored.
    """
    # A deadlock victim (two ingest processes locking the same monitors' live state) is
    # rolled back whole, so the batch is stored again.
    try:
        return retry_on_deadlock(
            lambda: _store(rows, pings, using=using, locking=False, rendered=rendered)
        )
    except _PartialReplay:
        return retry_on_deadlock(
            lambda: _store(rows, pings, using=using, locking=True, rendered=None)
        )


def _store(
    rows: Sequence[WireRow],
    pings: Sequence[PingRow],
    *,
    using: str,
    locking: bool,
    rendered: Rendered | None,
) -> StoreOutcome:
    connection = connections[using]
    outcome = StoreOutcome()
    with transaction.atomic(using=using), connection.wrap_database_errors:
        # The DB-API cursor, not Django's: in DEBUG Django would keep the text of
        # every 150 kB statement in connection.queries.
        cursor = connection.connection.cursor()
        try:
            by_key: dict[Key, WireRow] = {}
            for row in rows:  # the first result of a key wins within a batch
                if (key := (row[0], row[1], row[REGION])) not in by_key:
                    by_key[key] = row
            monitor_ids = {key[0] for key in by_key} | {ping[0] for ping in pings}
            unknown = _unknown_monitors(cursor, monitor_ids, using=using)
            if unknown:
                by_key = {key: row for key, row in by_key.items() if key[0] not in unknown}
                pings = [ping for ping in pings if ping[0] not in unknown]
            if pings_insert(cursor, pings):
                # Before the results: a paused heartbeat that pinged resumes first
                # (monitors listens), so its ping's result moves a running monitor.
                pings_stored.send(sender=StoreOutcome, pings=pings)
            if locking:
                for key in _existing_keys(cursor, list(by_key)):
                    del by_key[key]
            # In primary key order: fewer page splits, and two ingestors lock in the
            # same order.
            ordered = [by_key[key] for key in sorted(by_key)]
            inserted = rows_insert(cursor, ordered, rendered=rendered)
            if inserted != len(ordered):
                if locking:
                    # Cannot happen while the locking read holds the keys; retry later.
                    raise OperationalError("check_result changed under a locking read")
                if inserted != 0:
                    raise _PartialReplay
                ordered = []  # the whole batch is a replay
            rollups_append(cursor=cursor, rows=ordered)
            # The live state, incidents and notification rows of the new results
            # commit with them (monitors and alerting listen).
            if ordered:
                results_stored.send(sender=StoreOutcome, rows=ordered)
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
        then = (
            "ingest processes forget the deleted monitor within "
            f"{KNOWN_MONITORS_MAX_AGE:.0f} s anyway"
        )
        unreachable_log(log, "redis", exc, then)


def _existing_keys(cursor: Any, keys: list[Key]) -> set[Key]:
    """Keys already stored, locked until commit (the locking read also locks the gaps
    of the missing keys, so a concurrent ingestor cannot insert them meanwhile)."""
    if not keys:
        return set()
    placeholders = ", ".join(["(%s, %s, %s)"] * len(keys))
    sql = (
        "SELECT monitor_id, scheduled_at, region FROM check_result "
        "WHERE (monitor_id, scheduled_at, region)"
    )
    cursor.execute(
        f"{sql} IN ({placeholders}) FOR UPDATE",  # placeholders only
        [value for m, s, r in keys for value in (m, datetime_text(s), r)],
    )
    return {(int(m), to_epoch_ms(as_utc(s)), r) for m, s, r in cursor.fetchall()}


def rows_insert(cursor: Any, rows: list[WireRow], *, rendered: Rendered | None = None) -> int:
    """Insert the rows, skipping keys already stored; returns how many were new.

    ``LOAD DATA LOCAL INFILE`` of a tab-separated file is MySQL's fastest way in, a
    few times faster than a multi-row INSERT of the same rows; where the server or
    client refuses local files (MySQL 8's default, or
    ``TELEMETRY_INGEST_LOAD_DATA=false``) one multi-row INSERT IGNORE does it.
    """
    if not rows:
        return 0
    if _load_data_allowed():
        try:
            return _load_data(cursor, rows, rendered)
        except MySQLdb.Error as exc:
            if not exc.args or exc.args[0] not in MYSQL_LOCAL_INFILE_REFUSED:
                raise
            _refuse_load_data(exc)
    return _insert_values(cursor, rows)


_load_data_refused = False


def _load_data_allowed() -> bool:
    return settings.TELEMETRY_INGEST_LOAD_DATA and not _load_data_refused


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


def _load_data(cursor: Any, rows: list[WireRow], rendered: Rendered | None) -> int:
    scratch = _scratch_file()
    scratch.seek(0)
    scratch.truncate()
    scratch.write(rendered.tsv if rendered and rendered.renders(rows) else _tsv(rows))
    scratch.flush()
    if rendered and rendered.on_send:
        rendered.on_send()
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


@dataclass(frozen=True)
class Rendered:
    """Rows rendered as LOAD DATA's file ahead of their transaction (``rows_render``).
    ``on_send`` is called as the file is sent, when MySQL takes over and the storing
    thread waits without the GIL (ingest's helper thread starts its work then)."""

    rows: Sequence[WireRow]
    tsv: bytes
    on_send: Callable[[], None] | None = None

    def renders(self, rows: Sequence[WireRow]) -> bool:
        """Whether this is the file of exactly ``rows`` (the same rows, in order)."""
        return len(rows) == len(self.rows) and all(map(operator.is_, rows, self.rows))


def rows_render(
    rows: Sequence[WireRow], *, on_send: Callable[[], None] | None = None
) -> Rendered | None:
    """``rows`` (checked, in primary key order, each key once) as LOAD DATA's file,
    for ``rows_store`` to send without rendering it inside the transaction; None
    where ingest inserts instead (``TELEMETRY_INGEST_LOAD_DATA``, or refused)."""
    return Rendered(rows, _tsv(rows), on_send) if rows and _load_data_allowed() else None


def _tsv(rows: Sequence[WireRow]) -> bytes:
    """The rows as LOAD DATA reads them: tab-separated, \\N for NULL, the columns
    only (not the subject). Rows are checked (``wire_rows_decode``): ints are ints,
    the failure kind is a known word and the region a region name, so only the
    error text can hold a character to escape. The times are ``datetime_text``
    written out (a call per time was a fifth of the rendering)."""
    sec, ms = _SECOND_TEXT, _MILLISECOND_TEXT
    return "".join(
        [
            f"{m}\t{sec[s // 1000]}{ms[s % 1000]}\t{sec[st // 1000]}{ms[st % 1000]}\t{d}\t"
            f"{1 if ok else 0}\t{_N if sc is None else sc}\t{_N if f is None else f}\t"
            f"{_tsv_text(e) if e else ''}\t{_N if a is None else a}\t{_N if b is None else b}\t"
            f"{_N if c is None else c}\t{_N if t is None else t}\t"
            f"{_N if x is None else sec[x // 1000] + ms[x % 1000]}\t{r}\n"
            for m, s, st, d, ok, sc, f, e, a, b, c, t, x, _subject, r in rows
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
    text = datetime_text
    values = ",".join(
        f"({m},'{text(s)}','{text(st)}',{d},{1 if ok else 0},{_sql_int(sc)},"
        f"{'NULL' if f is None else repr(f)},{escape(e.encode()).decode()},{_sql_int(a)},"
        f"{_sql_int(b)},{_sql_int(c)},{_sql_int(t)},{'NULL' if x is None else repr(text(x))},"
        f"'{r}')"
        for m, s, st, d, ok, sc, f, e, a, b, c, t, x, _subject, r in rows
    )
    # Every value above is an int, a formatted datetime, an escaped string literal or a
    # region name (letters, digits and dashes: checked by wire_rows_decode).
    sql = f"INSERT IGNORE INTO check_result ({', '.join(COLUMNS)}) VALUES {values}"  # noqa: S608
    cursor.execute(sql)
    return int(cursor.rowcount)


def _sql_int(value: int | None) -> str:
    return "NULL" if value is None else str(value)


class _SecondText(dict[int, str]):
    """Epoch seconds to their ``DATETIME`` text, each formatted once: a batch's times
    fall in a few seconds. A lookup is a plain dict lookup; a miss formats it."""

    def __missing__(self, second: int) -> str:
        if len(self) >= 100_000:
            self.clear()
        text = self[second] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(second))
        return text


_SECOND_TEXT = _SecondText()
_MILLISECOND_TEXT = [f".{n:03d}" for n in range(1000)]


def datetime_text(epoch_ms: int) -> str:
    """``epoch_ms`` as MySQL ``DATETIME(3)`` text in UTC, e.g. ``2026-11-30 07:04:03.123``."""
    return _SECOND_TEXT[epoch_ms // 1000] + _MILLISECOND_TEXT[epoch_ms % 1000]
