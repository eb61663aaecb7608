"""Database helpers: row locks in key order, named locks, the values-table UPDATE,
deadlock retries and the MySQL error codes the code reacts to.

Row locks are taken in key order, whatever the size of the key list.

Two transactions that lock overlapping rows never deadlock if both lock in ascending
key order. A single ``WHERE key IN (...) ORDER BY key FOR UPDATE`` does that while
MariaDB reads the list along the index, but from ``in_predicate_conversion_threshold``
values (1,000 by default) it turns the list into a table of values and locks rows in
that table's order instead: a dispatch claim of 1,000 monitors once deadlocked that way
with a probe batch's live-state lock. So lists are locked in ascending chunks below it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from django.db import OperationalError, connections, models

IN_LIST_MAX = 500

# MySQL/MariaDB error codes (server and client) that the code reacts to.
MYSQL_DEADLOCK = 1213
# "Cannot reach or use the server": connect refused, host unknown, gone away, lost
# during a query, access denied (an unknown database, 1049, is not an outage: it is
# created by ensure_database).
MYSQL_UNREACHABLE = frozenset({2002, 2003, 2005, 2006, 2013, 1045})
MYSQL_UNKNOWN_DATABASE = 1049
# Why a server or client refuses LOAD DATA LOCAL: ER_NOT_ALLOWED_COMMAND (1148),
# MariaDB's ER_LOAD_INFILE_CAPABILITY_DISABLED (4166), MySQL 8's
# ER_CLIENT_LOCAL_FILES_DISABLED (3948), the client library's
# CR_LOAD_DATA_LOCAL_INFILE_REJECTED (2068).
MYSQL_LOCAL_INFILE_REFUSED = frozenset({1148, 4166, 3948, 2068})

# The vendor of core.nodatabase, the backend of a process without a database.
NO_DATABASE_VENDOR = "none"

# A transaction chosen as a deadlock victim is run again, this many times in all.
DEADLOCK_ATTEMPTS = 3

Row = TypeVar("Row")
T = TypeVar("T")


def ascending_chunks(keys: Iterable[int], *, size: int = IN_LIST_MAX) -> Iterator[list[int]]:
    """The distinct ``keys`` in ascending order, ``size`` at a time."""
    ordered = sorted(set(keys))
    for offset in range(0, len(ordered), size):
        yield ordered[offset : offset + size]


def sql_ids(ids: Iterable[int]) -> str:
    """``ids`` as the inside of an SQL ``IN (...)`` list, e.g. ``"3,7,12"``. Each goes
    through ``int()``, so nothing but digits reaches the SQL; for lists of thousands,
    where the driver's quoting of one parameter per id cost more than the query."""
    return ",".join(str(int(pk)) for pk in ids)


def lock_in_key_order(
    queryset: models.QuerySet[Any, Row], field: str, keys: Iterable[int]
) -> list[Row]:
    """The rows of ``queryset`` (models, or ``values_list`` tuples) whose ``field`` is
    one of ``keys``, locked FOR UPDATE in ascending ``field`` order, inside the
    caller's transaction."""
    rows: list[Row] = []
    for chunk in ascending_chunks(keys):
        rows += queryset.select_for_update().filter(**{f"{field}__in": chunk}).order_by(field)
    return rows


@contextmanager
def named_lock(name: str, *, timeout: int = 0, using: str = "default") -> Iterator[bool]:
    """Hold the server's named lock ``name`` (``GET_LOCK``) for the block; yields whether
    it was taken within ``timeout`` seconds. It is the connection's, not a
    transaction's: released at the end of the block, or by the server when the
    connection dies. The name is prefixed with the database's, so test and development
    databases on one server do not share it, and cut to the server's 64 characters."""
    connection = connections[using]
    lock = f"{connection.settings_dict['NAME']}.{name}"[-64:]
    with connection.cursor() as cursor:
        cursor.execute("SELECT GET_LOCK(%s, %s)", [lock, timeout])
        taken = cursor.fetchone() == (1,)
        try:
            yield taken
        finally:
            if taken:
                cursor.execute("SELECT RELEASE_LOCK(%s)", [lock])


def database_configured(using: str = "default") -> bool:
    """Whether this process has a database: a probe worker without ``DATABASE_URL``
    runs on ``core.nodatabase``, which refuses every query."""
    return connections[using].vendor != NO_DATABASE_VENDOR


def retry_on_deadlock(work: Callable[[], T], *, attempts: int = DEADLOCK_ATTEMPTS) -> T:
    """``work()``, run again when InnoDB picks it as a deadlock victim (error 1213).

    Safe only for a ``work`` that is one whole transaction: the victim is rolled back
    whole, so nothing of the failed attempt remains. Other errors, and the last
    deadlock, propagate.
    """
    for attempt in range(attempts):
        try:
            return work()
        except OperationalError as exc:
            if not exc.args or exc.args[0] != MYSQL_DEADLOCK or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def update_from_values(
    *,
    table: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    on: str,
    assignments: str,
    casts: Mapping[str, str] | None = None,
    using: str = "default",
) -> int:
    """Update many rows with one statement: ``UPDATE table t JOIN (values) v ON ...``.

    ``rows`` are the values, one tuple per row in ``columns`` order, joined as the
    derived table ``v`` (its first row a ``SELECT`` that names the columns, the rest a
    ``UNION ALL VALUES`` table value constructor); ``on`` and ``assignments`` are SQL
    over the aliases ``t`` and ``v`` (e.g. ``"t.id = v.id"``, ``"t.status = v.status"``);
    ``casts`` maps a column to an SQL type where the server must not guess it
    (``DATETIME(6)`` for a comparison). Returns the number of rows changed.

    Only code supplies ``table``, ``columns``, ``on``, ``assignments`` and ``casts``;
    every value is rendered as an escaped SQL literal by ``sql_literal``. Django's
    ``bulk_update`` builds a CASE per field and row instead, which cost more Python than
    the rest of a batch's state update; a ``SELECT ... UNION ALL`` per row, and the
    driver's own quoting of each parameter, cost MariaDB and Python twice as much as
    this at ingest's thousand rows a statement.
    """
    if not rows:
        return 0
    casts = casts or {}
    with connections[using].cursor() as cursor:
        literal = _literal_renderer(cursor.connection)

        def row_sql(row: Sequence[Any]) -> list[str]:
            return [
                f"CAST({literal(value)} AS {casts[name]})" if name in casts else literal(value)
                for name, value in zip(columns, row, strict=True)
            ]

        first = ", ".join(
            f"{value} AS {name}" for name, value in zip(columns, row_sql(rows[0]), strict=True)
        )
        rest = ",".join(f"({','.join(row_sql(row))})" for row in rows[1:])
        values = f"SELECT {first}" + (f" UNION ALL VALUES {rest}" if rest else "")
        # Names and SQL from code; every value an escaped literal (see the docstring).
        cursor.execute(f"UPDATE {table} t JOIN ({values}) v ON {on} SET {assignments}")  # noqa: S608
        return int(cursor.rowcount)


def _literal_renderer(db_api_connection: Any) -> Callable[[Any], str]:
    """``sql_literal`` bound to a MySQLdb connection (its escaping follows the
    connection's character set and SQL mode)."""
    escape = db_api_connection.string_literal
    fallback = db_api_connection.literal

    def literal(value: Any) -> str:
        kind = type(value)
        if kind is int:
            return str(value)
        if value is None:
            return "NULL"
        if kind is str:
            return str(escape(value.encode()).decode())
        if kind is bool:
            return "1" if value else "0"
        if kind is dt.datetime:
            # Stored as UTC without a zone, as Django stores DateTimeField with USE_TZ.
            moment = value.astimezone(dt.UTC) if value.tzinfo else value
            return f"'{moment:%Y-%m-%d %H:%M:%S.%f}'"
        rendered = fallback(value)
        return rendered.decode() if isinstance(rendered, bytes) else str(rendered)

    return literal
