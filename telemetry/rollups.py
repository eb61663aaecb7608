"""Hourly and daily rollups, kept by folding the deltas that ingest appends.

Ingest does not update the rollup tables itself. In the transaction that inserts a
batch's raw rows it appends ONE row to ``check_rollup_pending``: the batch's
aggregates per (monitor, hour), of the rows it actually inserted (``rollups_append``).
``rollups_fold`` later takes many pending rows at once, adds them up in memory and
writes each touched (monitor, hour) and (monitor, day) once, then deletes the pending
rows it folded, all in one transaction.

Why: a monitor checked every minute appears once in a batch of 1,000 results, so
upserting rollups per batch costs two read-modify-writes per result, three quarters
of the transaction. A fold over a minute or more of batches writes a monitor's hour
once, and a backlog drained after an outage folds hundreds of checks per row.

Exactly once: a delta is committed with the raw rows it describes (a replayed batch
inserts nothing and appends nothing), and a fold deletes the deltas in the same
transaction that adds them. Two folds never take the same pending row (``FOR UPDATE
SKIP LOCKED``), and they upsert in key order, so they wait for each other instead of
deadlocking.

Freshness: rollups trail the raw rows by at most ``TELEMETRY_ROLLUP_FOLD_SECONDS``
while ingest is busy; an idle ingest loop folds at once.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

import orjson
from django.db import connections, transaction

from telemetry.histogram import BUCKET_COLUMNS, bucket_index

ROLLUP_COLUMNS = (
    "checks",
    "failures",
    "latency_sum_ms",
    "latency_min_ms",
    "latency_max_ms",
    *BUCKET_COLUMNS,
)
# Positions in a delta's value list (ROLLUP_COLUMNS order).
CHECKS, FAILURES, LATENCY_SUM, LATENCY_MIN, LATENCY_MAX, FIRST_BUCKET = range(6)
# Pending rows folded per transaction: at 1,000 results a batch, up to 500,000
# results; a few MB of deltas in memory.
FOLD_MAX_PENDING = 500
# Rollup rows per upsert statement: about 100 bytes each, well under MariaDB's
# default 16 MB max_allowed_packet.
UPSERT_CHUNK = 5_000

Values = list[Any]  # one rollup row's values, in ROLLUP_COLUMNS order
Deltas = dict[tuple[int, int], Values]  # (monitor_id, hour as epoch seconds) -> values


def rollup_deltas(rows: Iterable[Sequence[Any]]) -> Deltas:
    """Aggregates of check_result rows (monitor_id, scheduled_at, _, duration_ms, ok,
    ...) per (monitor, hour). Latency statistics cover successful checks only (see
    the rollup DDL), so a timeout does not pass for a slow answer."""
    deltas: Deltas = {}
    for row in rows:
        monitor_id, scheduled, duration, ok = row[0], row[1], row[3], row[4]
        key = (monitor_id, _hour_epoch(scheduled))
        values = deltas.get(key)
        if values is None:
            values = deltas[key] = [0, 0, 0, None, None, *[0] * len(BUCKET_COLUMNS)]
        values[CHECKS] += 1
        if not ok:
            values[FAILURES] += 1
            continue
        values[LATENCY_SUM] += duration
        low, high = values[LATENCY_MIN], values[LATENCY_MAX]
        values[LATENCY_MIN] = duration if low is None or duration < low else low
        values[LATENCY_MAX] = duration if high is None or duration > high else high
        values[FIRST_BUCKET + bucket_index(duration)] += 1
    return deltas


def _hour_epoch(moment: dt.datetime) -> int:
    # Naive UTC (check_result's DATETIME); timegm-like arithmetic without a tz object.
    return int((moment - _EPOCH).total_seconds()) // 3600 * 3600


_EPOCH = dt.datetime(1970, 1, 1)


def rollups_append(*, cursor: Any, rows: Sequence[Sequence[Any]]) -> None:
    """Append the deltas of ``rows`` (just inserted, same transaction) as one pending row."""
    if not rows:
        return
    deltas = rollup_deltas(rows)
    payload = orjson.dumps([[m, h, *v] for (m, h), v in deltas.items()])
    cursor.execute(
        "INSERT INTO check_rollup_pending (results, deltas) VALUES (%s, %s)",
        [len(rows), payload],
    )


def rollups_fold(*, using: str = "default", max_pending: int = FOLD_MAX_PENDING) -> int:
    """Fold up to ``max_pending`` pending deltas into both rollup tables, in one
    transaction; returns how many results they covered (0: nothing was pending)."""
    connection = connections[using]
    with transaction.atomic(using=using), connection.wrap_database_errors:
        cursor = connection.connection.cursor()
        try:
            # SKIP LOCKED: a second fold takes other rows instead of waiting. Django
            # runs MySQL at READ COMMITTED, so the read locks only the rows it returns,
            # not the gap after them where ingest appends.
            cursor.execute(
                "SELECT id, results, deltas FROM check_rollup_pending "
                "ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
                [max_pending],
            )
            pending = cursor.fetchall()
            if not pending:
                return 0
            hourly = _merge_pending(payload for _, _, payload in pending)
            _upsert(cursor, "check_rollup_hourly", "hour_start", _hour_rows(hourly))
            _upsert(cursor, "check_rollup_daily", "day", _day_rows(hourly))
            ids = [row[0] for row in pending]
            cursor.execute(
                f"DELETE FROM check_rollup_pending WHERE id IN ({', '.join(['%s'] * len(ids))})",  # noqa: S608
                ids,
            )
        finally:
            cursor.close()
    return sum(int(row[1]) for row in pending)


class PendingRollups(NamedTuple):
    batches: int  # pending delta rows
    results: int  # results they cover
    oldest_age_seconds: float  # how far the rollups trail (0 when nothing is pending)


def rollups_pending(*, using: str = "default") -> PendingRollups:
    """What ingest appended and no fold has added to the rollups yet."""
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*), COALESCE(SUM(results), 0), "
            "COALESCE(TIMESTAMPDIFF(MICROSECOND, MIN(created_at), NOW(3)), 0) "
            "FROM check_rollup_pending"
        )
        count, results, age_us = cursor.fetchone()
    return PendingRollups(int(count), int(results), max(0.0, int(age_us) / 1e6))


def _merge_pending(payloads: Iterable[bytes | str]) -> Deltas:
    merged: Deltas = {}
    for payload in payloads:
        for monitor_id, hour, *values in orjson.loads(payload):
            _add(merged, (monitor_id, hour), values)
    return merged


def _add(into: Deltas, key: Any, values: Values) -> None:
    current = into.get(key)
    if current is None:
        into[key] = list(values)
        return
    current[CHECKS] += values[CHECKS]
    current[FAILURES] += values[FAILURES]
    current[LATENCY_SUM] += values[LATENCY_SUM]
    current[LATENCY_MIN] = _pick(min, current[LATENCY_MIN], values[LATENCY_MIN])
    current[LATENCY_MAX] = _pick(max, current[LATENCY_MAX], values[LATENCY_MAX])
    current[FIRST_BUCKET:] = map(operator.add, current[FIRST_BUCKET:], values[FIRST_BUCKET:])


def _pick(choose: Callable[[int, int], int], a: int | None, b: int | None) -> int | None:
    # None (no successful check) never wins.
    if a is None or b is None:
        return b if a is None else a
    return choose(a, b)


def _hour_rows(hourly: Deltas) -> list[tuple[int, str, Values]]:
    return [
        (monitor_id, dt.datetime.fromtimestamp(hour, dt.UTC).strftime("%Y-%m-%d %H:%M:%S"), v)
        for (monitor_id, hour), v in sorted(hourly.items())
    ]


def _day_rows(hourly: Deltas) -> list[tuple[int, str, Values]]:
    daily: Deltas = {}
    for (monitor_id, hour), values in hourly.items():
        _add(daily, (monitor_id, hour // 86400 * 86400), values)
    return [
        (monitor_id, dt.datetime.fromtimestamp(day, dt.UTC).strftime("%Y-%m-%d"), v)
        for (monitor_id, day), v in sorted(daily.items())
    ]


def _upsert(cursor: Any, table: str, column: str, rows: list[tuple[int, str, Values]]) -> None:
    """Add ``rows`` to ``table``. Sorted by key (the callers sort), so that two folds
    lock the rollup rows they share in the same order."""
    columns = f"monitor_id, {column}, {', '.join(ROLLUP_COLUMNS)}"
    for offset in range(0, len(rows), UPSERT_CHUNK):
        # Rendered here: ints, NULLs and a formatted date are all there is, and
        # mysqlclient's per-value quoting was most of the time of this statement.
        values = ",".join(
            f"({monitor_id},'{start}',{','.join(map(str, v))})"
            for monitor_id, start, v in rows[offset : offset + UPSERT_CHUNK]
        ).replace("None", "NULL")  # latency_min/max of a period without a success
        cursor.execute(f"INSERT INTO {table} ({columns}) VALUES {values}{_ROLLUP_UPDATE}")  # noqa: S608


def _merge_sql(column: str, pick: str) -> str:
    # NULL (no successful check yet) must not win LEAST/GREATEST.
    return (
        f"{column} = {pick}(COALESCE({column}, VALUES({column})), "
        f"COALESCE(VALUES({column}), {column}))"
    )


# VALUES(col) rather than MySQL 8's row alias: MariaDB 10.11 has only the former.
_ROLLUP_UPDATE = " ON DUPLICATE KEY UPDATE " + ", ".join(
    [
        *(f"{c} = {c} + VALUES({c})" for c in ("checks", "failures", "latency_sum_ms")),
        _merge_sql("latency_min_ms", "LEAST"),
        _merge_sql("latency_max_ms", "GREATEST"),
        *(f"{c} = {c} + VALUES({c})" for c in BUCKET_COLUMNS),
    ]
)
