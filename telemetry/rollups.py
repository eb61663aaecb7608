"""Hourly and daily rollups, kept by folding the deltas that ingest appends.

Ingest does not update the rollup tables itself. In the transaction that inserts a
batch's raw rows it appends ONE row to ``check_rollup_pending``: the monitor, hour and
latency of each row it actually inserted (``rollups_append``).
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

The same deltas, in the same transaction, go to each monitor's small summary
(``telemetry.summary``: at once, or kept for a later fold) that the status pages and the
dashboard overview read.

Freshness: rollups trail the raw rows by at most ``TELEMETRY_ROLLUP_FOLD_SECONDS``
while ingest is busy; an idle ingest loop folds at once.

Speed: ingest's helper thread adds up the deltas it appended ahead of the fold
(``rollups_premerge``; used only for pending rows with exactly those contents), and
the fold renders each upsert while MySQL runs the one before.
"""

from __future__ import annotations

import functools
import operator
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NamedTuple

import orjson
from django.conf import settings
from django.db import connections, transaction

from core.prefetch import prefetched
from telemetry.histogram import BUCKET_COLUMNS, bucket_index
from telemetry.summary import summaries_defer

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
# Results folded per transaction, about (whole pending rows, one per ingest batch):
# their checks are some 100 MB of Python objects while they are added up.
FOLD_MAX_RESULTS = 500_000
# Rollup rows per upsert statement: about 100 bytes each, well under MariaDB's
# default 16 MB max_allowed_packet.
UPSERT_CHUNK = 5_000

Values = list[Any]  # one rollup row's values, in ROLLUP_COLUMNS order
Deltas = dict[tuple[int, int], Values]  # (monitor_id, hour as epoch seconds) -> values


Check = Sequence[int]  # (monitor_id, hour as epoch seconds, latency in ms or -1: failed)


def rollup_deltas(checks: Iterable[Check], into: Deltas | None = None) -> Deltas:
    """Aggregates of checks per (monitor, hour), added to ``into`` if given. Latency
    statistics cover successful checks only (see the rollup DDL), so a timeout does not
    pass for a slow answer."""
    deltas: Deltas = {} if into is None else into
    for monitor_id, hour, latency in checks:
        values = deltas.get((monitor_id, hour))
        if values is None:
            values = deltas[(monitor_id, hour)] = [0, 0, 0, None, None, *_NO_BUCKETS]
        values[CHECKS] += 1
        if latency < 0:
            values[FAILURES] += 1
            continue
        values[LATENCY_SUM] += latency
        low, high = values[LATENCY_MIN], values[LATENCY_MAX]
        values[LATENCY_MIN] = latency if low is None or latency < low else low
        values[LATENCY_MAX] = latency if high is None or latency > high else high
        values[FIRST_BUCKET + bucket_index(latency)] += 1
    return deltas


_NO_BUCKETS = (0,) * len(BUCKET_COLUMNS)


def rollups_append(*, cursor: Any, rows: Sequence[Sequence[Any]]) -> None:
    """Append the checks of wire ``rows`` (just inserted, same transaction; see
    ``telemetry.records``) as one pending row.

    The row holds each check as [monitor_id, hour, latency or -1], not the batch's
    aggregates: a minute's batch holds one check per monitor, so aggregating here
    would only be done again by the fold, and three numbers a check are a fifth of
    what an aggregate row takes to write and read back."""
    if not rows:
        return
    checks = [[r[0], r[1] // 3_600_000 * 3600, r[3] if r[4] else -1] for r in rows]
    payload = orjson.dumps(checks)
    _premerged.note(payload, len(rows))
    cursor.execute(
        "INSERT INTO check_rollup_pending (results, deltas) VALUES (%s, %s)",
        [len(rows), payload],
    )


def rollups_fold(*, using: str = "default", max_pending: int | None = None) -> int:
    """Fold up to ``max_pending`` pending deltas into both rollup tables, in one
    transaction; returns how many results they covered (0: nothing was pending). By
    default as many as hold about ``FOLD_MAX_RESULTS`` results at ingest's batch size."""
    if max_pending is None:
        max_pending = max(1, FOLD_MAX_RESULTS // settings.TELEMETRY_INGEST_BATCH_SIZE)
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
                # An idle fold still adds what waits for the summaries, when it is time.
                summaries_defer(cursor=cursor, hourly={})
                return 0
            payloads = [bytes(payload) for _, _, payload in pending]  # a BLOB: bytes
            hourly = _premerged.take(payloads)
            if hourly is None:
                hourly = _merge_pending(payloads)
            for statement in prefetched(_fold_statements(hourly), name="rollups-render"):
                cursor.execute(statement)
            summaries_defer(cursor=cursor, hourly=hourly)
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


def _merge_pending(payloads: Iterable[bytes], into: Deltas | None = None) -> Deltas:
    """The sum of pending rows' deltas (added to ``into``, if given)."""
    checks: list[Check] = []
    aggregates: list[list[Any]] = []
    for payload in payloads:
        for item in orjson.loads(payload):
            # [monitor, hour, latency]; [monitor, hour, *values] was appended by a
            # release before 2026-11-29 and may still be pending after an upgrade.
            (checks if len(item) == 3 else aggregates).append(item)
    merged = rollup_deltas(checks, into)
    for monitor_id, hour, *values in aggregates:
        _add(merged, (monitor_id, hour), values)
    return merged


def rollups_premerge() -> None:
    """Add up, ahead of the fold, the deltas this process appended since the last fold:
    for a thread with nothing better to do (ingest's take-ahead thread, between
    takes). A fold that then takes those pending rows skips adding them up, most of
    its Python work."""
    _premerged.merge_appended()


class _Premerged:
    """The sum of the pending deltas this process appended, made ahead of the fold.

    Keyed by content, not by row id: a fold uses the sum only when every payload in it
    is among the pending rows the fold took (it adds up the others then), so a
    payload whose transaction rolled back, or rows another process's fold took, only
    make it start over. Dropped, too, past ``FOLD_MAX_RESULTS``: no fold takes more.

    Two locks: noting an append (inside ingest's transaction) never waits for the
    adding up, which holds only ``_summing``.
    """

    def __init__(self) -> None:
        self._appending = threading.Lock()  # appended, results, too_many
        self._summing = threading.Lock()  # summed, deltas
        self.appended: list[bytes] = []  # appended, not yet added up
        self.results = 0  # in all of them, summed or not
        self.too_many = False
        self.summed: Counter[bytes] = Counter()  # added up into `deltas`
        self.deltas: Deltas = {}

    def note(self, payload: bytes, results: int) -> None:
        with self._appending:
            self.appended.append(payload)
            self.results += results
            self.too_many = self.too_many or self.results > FOLD_MAX_RESULTS

    def merge_appended(self) -> None:
        with self._summing:
            with self._appending:
                appended, self.appended = self.appended, []
                too_many = self.too_many
            if appended and not too_many:
                _merge_pending(appended, into=self.deltas)
                self.summed.update(appended)

    def take(self, payloads: list[bytes]) -> Deltas | None:
        """The sum of ``payloads`` (a fold's pending rows) if it was made ahead, but
        for payloads appended since, which are added now; None if it was not. Starts
        over either way: the fold consumes the rows."""
        with self._summing, self._appending:
            summed, deltas, too_many = self.summed, self.deltas, self.too_many
            self.appended, self.results, self.too_many = [], 0, False
            self.summed, self.deltas = Counter(), {}
        if not summed or too_many:
            return None
        rest = Counter(payloads)
        rest.subtract(summed)
        if any(count < 0 for count in rest.values()):
            return None  # some of the sum is not in this fold
        return _merge_pending(rest.elements(), into=deltas)


_premerged = _Premerged()


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
    text = _utc_text
    return [
        (monitor_id, text(hour, "%Y-%m-%d %H:%M:%S"), v)
        for (monitor_id, hour), v in sorted(hourly.items())
    ]


@functools.lru_cache(maxsize=4096)
def _utc_text(epoch_seconds: int, pattern: str) -> str:
    # A fold touches many monitors but few hours and days: format each once.
    return time.strftime(pattern, time.gmtime(epoch_seconds))


def _day_rows(hourly: Deltas) -> list[tuple[int, str, Values]]:
    daily: Deltas = {}
    for (monitor_id, hour), values in hourly.items():
        _add(daily, (monitor_id, hour // 86400 * 86400), values)
    return [
        (monitor_id, _utc_text(day, "%Y-%m-%d"), v)
        for (monitor_id, day), v in sorted(daily.items())
    ]


def _fold_statements(hourly: Deltas) -> Iterator[str]:
    """A fold's upserts, the hourly rollups then the daily ones, in chunks. Made one
    ahead on a helper thread (``prefetched``): the daily sums and each statement's text
    are ready when MySQL has run the one before."""
    yield from _upserts("check_rollup_hourly", "hour_start", _hour_rows(hourly))
    yield from _upserts("check_rollup_daily", "day", _day_rows(hourly))


def _upserts(table: str, column: str, rows: list[tuple[int, str, Values]]) -> Iterator[str]:
    """Statements adding ``rows`` to ``table``. Sorted by key (the callers sort), so
    that two folds lock the rollup rows they share in the same order."""
    columns = f"monitor_id, {column}, {', '.join(ROLLUP_COLUMNS)}"
    for offset in range(0, len(rows), UPSERT_CHUNK):
        # Rendered here: ints, NULLs and a formatted date are all there is, and
        # mysqlclient's per-value quoting was most of the time of this statement. A
        # list's own text ("1, 0, None, ...") is its values in C, without a str() each.
        values = ",".join(
            [
                f"({monitor_id},'{start}',{str(v)[1:-1]})"
                for monitor_id, start, v in rows[offset : offset + UPSERT_CHUNK]
            ]
        ).replace("None", "NULL")  # latency_min/max of a period without a success
        yield f"INSERT INTO {table} ({columns}) VALUES {values}{_ROLLUP_UPDATE}"  # noqa: S608


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
