"""A small per-monitor summary of the rollups, kept where they are folded.

Why: a status page of 1,000 monitors wants each one's 90 daily bars and uptime over
24 h, 30 d and 90 d, and the dashboard overview wants 24 h / 7 d / 30 d uptime and an
hourly sparkline. Read from the rollups that is 50+ rows per monitor spread over
several monthly partitions, fast only while they sit in the buffer pool. The summary
is one row per monitor (``monitor_rollup_summary``, about 1.5 KB): the last
``DAYS`` UTC days and the last ``HOURS`` hours of checks, failures and latency sum.

Kept exactly once with the rollups: ``rollups_fold`` hands its deltas to
``summaries_defer`` in the same transaction, after the rollup upserts. They wait as a
row of ``check_summary_pending`` and are added to the summaries at most every
``TELEMETRY_SUMMARY_FOLD_SECONDS`` (300; 0: at every fold), many folds' at once, so a
monitor's row is rewritten once per period rather than once per fold: folding the
summary with every rollup fold made the fold, which holds up ingest, about half as
long again. Rows are locked in ascending monitor order (as the rollups are), so two
folds wait for each other rather than deadlock.

Freshness: the summaries trail the rollups by up to ``TELEMETRY_SUMMARY_FOLD_SECONDS``
plus the time to the next rollup fold; the live status is the monitor's own and never
waits. ``summaries_rebuild`` recomputes rows from the rollups (after an
upgrade, or data written around the fold such as the benchmark's dataset).

Granularity: windows read from the summary are whole hours (24 h: the current hour and
the 23 before it) or whole UTC days (7 d / 30 d / 90 d: today and the days before
it), not the exact ``(now - length, now]`` of ``reporting.queries.window_summary``.
"""

from __future__ import annotations

import datetime as dt
import functools
import struct
import sys
import time
from array import array
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from django.conf import settings
from django.db import connection, transaction

from core.db import ascending_chunks, sql_ids

DAYS = 92  # the 90-day bars and window, and two days of slack for late results
HOURS = 26  # the 24-hour window and sparkline, and the current hour
SLOT = 3  # checks, failures, latency sum (ms) of successful checks
UINT32_MAX = 2**32 - 1
TABLE = "monitor_rollup_summary"

# hour (epoch seconds) -> (checks, failures, latency sum) of one monitor
HourDeltas = dict[int, Sequence[int]]


@dataclass(frozen=True, slots=True)
class Period:
    """Checks of one day or hour: ``start`` (aware UTC), counts, latency sum (ms)."""

    start: dt.datetime
    checks: int
    failures: int
    latency_sum_ms: int

    @property
    def uptime_percent(self) -> float | None:
        return None if not self.checks else 100.0 * (self.checks - self.failures) / self.checks

    @property
    def avg_latency_ms(self) -> float | None:
        ok = self.checks - self.failures
        return self.latency_sum_ms / ok if ok > 0 else None


class Ring:
    """``size`` slots of (checks, failures, latency sum), the last one at ``last``
    (an epoch day or hour number). Packed as little-endian uint32s: ``last`` then the
    slots oldest first."""

    __slots__ = ("last", "size", "values")

    def __init__(self, size: int, packed: bytes = b"") -> None:
        self.size = size
        values = array("I")
        if len(packed) == 4 * (1 + size * SLOT):
            values.frombytes(packed)
        if sys.byteorder == "big":
            values.byteswap()
        if values:
            self.last, self.values = values[0], values[1:]
        else:  # new, or written with another size: start empty
            self.last, self.values = 0, _zeros(size)[:]

    def add(self, index: int, checks: int, failures: int, latency_sum: int) -> None:
        """Add to slot ``index``, moving the ring forward if it is newer than ``last``;
        an index older than the ring holds is dropped."""
        if index > self.last:
            self._advance(index)
        position = index - (self.last - self.size + 1)
        if position < 0:
            return
        offset = position * SLOT
        values = self.values
        values[offset] = min(UINT32_MAX, values[offset] + checks)
        values[offset + 1] = min(UINT32_MAX, values[offset + 1] + failures)
        values[offset + 2] = min(UINT32_MAX, values[offset + 2] + latency_sum)

    def _advance(self, index: int) -> None:
        shift = min(self.size, index - self.last) * SLOT
        self.values = self.values[shift:] + array("I", bytes(4 * shift))
        self.last = index

    def span(self, first: int, count: int) -> list[tuple[int, int, int]]:
        """The slots ``first`` to ``first + count - 1``, zeros outside the ring: one
        slice of the array, for pages that read 90 days of 1,000 monitors."""
        start = first - (self.last - self.size + 1)
        low, high = max(start, 0), min(start + count, self.size)
        flat = self.values[low * SLOT : high * SLOT] if high > low else array("I")
        found = list(zip(flat[0::3], flat[1::3], flat[2::3], strict=True))
        before = [(0, 0, 0)] * min(max(low - start, 0), count)
        return before + found + [(0, 0, 0)] * (count - len(before) - len(found))

    def slot(self, index: int) -> tuple[int, int, int]:
        """(checks, failures, latency sum) of ``index``; zeros outside the ring."""
        position = index - (self.last - self.size + 1)
        if position < 0 or index > self.last:
            return (0, 0, 0)
        offset = position * SLOT
        values = self.values
        return (values[offset], values[offset + 1], values[offset + 2])

    def pack(self) -> bytes:
        values = array("I", [self.last])
        values.extend(self.values)
        if sys.byteorder == "big":
            values.byteswap()
        return values.tobytes()


@functools.lru_cache(maxsize=4)
def _zeros(size: int) -> array[int]:
    # Copied (a memcpy) for each empty ring: a page of mostly new monitors makes many.
    return array("I", bytes(4 * size * SLOT))


@dataclass(slots=True)
class RollupSummary:
    """One monitor's summary as read: its day and hour rings."""

    monitor_id: int
    days: Ring
    hours: Ring

    def daily(self, *, today: dt.date, count: int = 90) -> list[Period]:
        """One period per UTC day, the ``count`` days ending ``today``, oldest first;
        a day without checks has ``checks == 0``."""
        last = (today - EPOCH_DAY).days
        return [
            Period(_day_start(index), *self.days.slot(index))
            for index in range(last - count + 1, last + 1)
        ]

    def day_slots(self, *, today: dt.date, count: int = 90) -> list[tuple[int, int, int]]:
        """(checks, failures, latency sum) per UTC day, the ``count`` days ending
        ``today``, oldest first: ``daily`` without the objects, for many monitors."""
        last = (today - EPOCH_DAY).days
        return self.days.span(last - count + 1, count)

    def day_counts(self, *, today: dt.date, count: int = 90) -> list[tuple[int, int]]:
        """(checks, failures) per UTC day, as ``day_slots``."""
        slots = self.day_slots(today=today, count=count)
        return [(checks, failures) for checks, failures, _ in slots]

    def hourly(self, *, now: dt.datetime, count: int = 24) -> list[Period]:
        """One period per hour, the ``count`` hours ending with the one holding ``now``."""
        last = int(now.timestamp()) // 3600
        return [
            Period(dt.datetime.fromtimestamp((last - count + 1 + i) * 3600, tz=dt.UTC), *slot)
            for i, slot in enumerate(self.hour_slots(now=now, count=count))
        ]

    def hour_slots(self, *, now: dt.datetime, count: int = 25) -> list[tuple[int, int, int]]:
        """(checks, failures, latency sum) per hour, the ``count`` hours ending with the
        one holding ``now``, oldest first (``hourly`` without the objects)."""
        last = int(now.timestamp()) // 3600
        return self.hours.span(last - count + 1, count)

    def uptime(self, *, window: str, now: dt.datetime) -> float | None:
        """Uptime % over ``window``: "24h" (the current hour and the 23 before it) or
        "<n>d" (today, UTC, and the n-1 days before); None without checks. ``KeyError``
        for another window."""
        periods = (
            self.hourly(now=now, count=24)
            if window == "24h"
            else self.daily(today=now.astimezone(dt.UTC).date(), count=DAY_WINDOWS[window])
        )
        return _total(periods).uptime_percent

    def last_latency_ms(self, *, now: dt.datetime) -> float | None:
        """Mean latency (ms) of the successful checks of the latest hour that had one
        in the last 24 hours; None if none did."""
        for period in reversed(self.hourly(now=now, count=24)):
            if period.avg_latency_ms is not None:
                return period.avg_latency_ms
        return None


DAY_WINDOWS = {"7d": 7, "30d": 30, "90d": 90}
EPOCH_DAY = dt.date(1970, 1, 1)


def _day_start(index: int) -> dt.datetime:
    return dt.datetime.combine(EPOCH_DAY + dt.timedelta(days=index), dt.time(), tzinfo=dt.UTC)


def _total(periods: Iterable[Period]) -> Period:
    checks = failures = latency = 0
    start = None
    for period in periods:
        start = start or period.start
        checks, failures = checks + period.checks, failures + period.failures
        latency += period.latency_sum_ms
    return Period(start or dt.datetime.now(dt.UTC), checks, failures, latency)


# The columns of a row after its id, in the order rows are read and written.
COLUMNS = (
    "day_index, day_checks, day_failures, day_latency_ms, "
    "hour_index, hour_checks, hour_failures, hour_latency_ms, days, hours"
)


def _rings(row: Sequence[Any]) -> tuple[Ring, Ring]:
    """A row's (after its id, ``COLUMNS`` order) day and hour rings, the current day
    and hour put in their slots."""
    days, hours = Ring(DAYS, bytes(row[8])), Ring(HOURS, bytes(row[9]))
    if row[0]:
        days.add(int(row[0]), int(row[1]), int(row[2]), int(row[3]))
    if row[4]:
        hours.add(int(row[4]), int(row[5]), int(row[6]), int(row[7]))
    return days, hours


def _row(days: Ring, hours: Ring) -> list[Any]:
    """The columns (``COLUMNS`` order) of two rings: their last slots as the current
    day's and hour's counters, the slots before them packed."""
    values: list[Any] = []
    for ring in (days, hours):
        current = ring.slot(ring.last)
        ring.add(ring.last, *(-value for value in current))
        values += [ring.last, *current]
    return [*values, days.pack(), hours.pack()]


def summaries_read(*, monitor_ids: Iterable[int]) -> dict[int, RollupSummary]:
    """The summaries of ``monitor_ids`` by id; a monitor without a row (no check folded
    yet) gets an empty one. Primary-key lookups, 500 ids a statement."""
    found: dict[int, RollupSummary] = {}
    with connection.cursor() as cursor:
        for chunk in ascending_chunks(monitor_ids):
            cursor.execute(
                f"SELECT monitor_id, {COLUMNS} FROM {TABLE} "  # noqa: S608
                f"WHERE monitor_id IN ({sql_ids(chunk)})"
            )
            for monitor_id, *row in cursor.fetchall():
                found[monitor_id] = RollupSummary(monitor_id, *_rings(row))
            for monitor_id in chunk:
                found.setdefault(monitor_id, RollupSummary(monitor_id, _NO_DAYS, _NO_HOURS))
    return found


# The rings of every monitor without a row: shared, since readers never change them.
_NO_DAYS, _NO_HOURS = Ring(DAYS), Ring(HOURS)


def summaries_day_totals(
    *, monitor_ids: Iterable[int], today: dt.date, count: int
) -> dict[int, tuple[int, int, int]]:
    """(checks, failures, latency sum ms) of each monitor over the ``count`` UTC days
    ending ``today``, for monitors with a summary row (others are absent). Reads only
    the day columns and unpacks only those slots: for fleet-wide lists over thousands
    of monitors."""
    last = (today - EPOCH_DAY).days
    totals: dict[int, tuple[int, int, int]] = {}
    with connection.cursor() as cursor:
        for chunk in ascending_chunks(monitor_ids):
            cursor.execute(
                "SELECT monitor_id, day_index, day_checks, day_failures, day_latency_ms, "  # noqa: S608
                f"days FROM {TABLE} WHERE monitor_id IN ({sql_ids(chunk)})"
            )
            for monitor_id, index, *current, days in cursor.fetchall():
                checks, failures, latency = _day_total(bytes(days), last, count)
                if last - count < index <= last:
                    checks, failures = checks + current[0], failures + current[1]
                    latency += current[2]
                totals[monitor_id] = (int(checks), int(failures), int(latency))
    return totals


def _day_total(packed: bytes, last: int, count: int) -> tuple[int, int, int]:
    if len(packed) != 4 * (1 + DAYS * SLOT):
        return (0, 0, 0)
    (ring_last,) = _UINT.unpack_from(packed, 0)
    checks = failures = latency = 0
    for index in range(max(last - count + 1, ring_last - DAYS + 1), min(last, ring_last) + 1):
        offset = 4 * (1 + (index - (ring_last - DAYS + 1)) * SLOT)
        day_checks, day_failures, day_latency = _SLOT.unpack_from(packed, offset)
        checks, failures = checks + day_checks, failures + day_failures
        latency += day_latency
    return (checks, failures, latency)


_UINT = struct.Struct("<I")
_SLOT = struct.Struct("<III")


PENDING_TABLE = "check_summary_pending"
# Pending rows taken by one summary fold (each holds one rollup fold's deltas).
PENDING_TAKEN_MAX = 1000


class _FoldClock:
    """When this process last added the pending deltas to the summaries (monotonic)."""

    last: float | None = None

    def due(self, interval: float) -> bool:
        return self.last is None or time.monotonic() - self.last >= interval


_clock = _FoldClock()


def summaries_defer(*, cursor: Any, hourly: Mapping[tuple[int, int], Sequence[Any]]) -> None:
    """Take a rollup fold's deltas, ``{(monitor_id, hour epoch seconds): rollup values}``
    (``telemetry.rollups.ROLLUP_COLUMNS`` order; may be empty), inside the fold's
    transaction (``cursor``: its DB-API cursor): added to the summaries now when this
    process has not folded them for ``TELEMETRY_SUMMARY_FOLD_SECONDS`` (together with
    every pending row it can lock; ``FOR UPDATE SKIP LOCKED``, so two processes never
    fold the same row), else kept as one ``check_summary_pending`` row."""
    interval = settings.TELEMETRY_SUMMARY_FOLD_SECONDS
    if interval and not _clock.due(interval):
        if hourly:
            cursor.execute(
                f"INSERT INTO {PENDING_TABLE} (deltas) VALUES (%s)",  # noqa: S608
                [
                    orjson.dumps(
                        [[m, h, int(v[0]), int(v[1]), int(v[2])] for (m, h), v in hourly.items()]
                    )
                ],
            )
        return
    merged: dict[tuple[int, int], list[int]] = {
        key: [int(values[0]), int(values[1]), int(values[2])] for key, values in hourly.items()
    }
    if interval:
        _take_pending(cursor, into=merged)
        # Marked before the commit: a fold rolled back is retried with the next batch's.
        _clock.last = time.monotonic()
    summaries_fold(cursor=cursor, hourly=merged)


def _take_pending(cursor: Any, *, into: dict[tuple[int, int], list[int]]) -> int:
    """Add up to ``PENDING_TAKEN_MAX`` pending rows (those no other transaction holds)
    to ``into`` and delete them; returns how many it took."""
    cursor.execute(
        f"SELECT id, deltas FROM {PENDING_TABLE} ORDER BY id LIMIT %s "  # noqa: S608
        "FOR UPDATE SKIP LOCKED",
        [PENDING_TAKEN_MAX],
    )
    taken = cursor.fetchall()
    for _, payload in taken:
        for monitor_id, hour, checks, failures, latency in orjson.loads(bytes(payload)):
            sums = into.setdefault((monitor_id, hour), [0, 0, 0])
            sums[0], sums[1], sums[2] = sums[0] + checks, sums[1] + failures, sums[2] + latency
    if taken:
        ids = sql_ids(row[0] for row in taken)
        cursor.execute(f"DELETE FROM {PENDING_TABLE} WHERE id IN ({ids})")  # noqa: S608
    return len(taken)


def summaries_fold_pending() -> int:
    """Add every pending delta to the summaries now (in transactions of up to
    ``PENDING_TAKEN_MAX`` rows); returns how many pending rows it folded. For
    ``summaries_rebuild``, and for whoever wants the summaries current at once."""
    folded = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            merged: dict[tuple[int, int], list[int]] = {}
            taken = _take_pending(cursor, into=merged)
            summaries_fold(cursor=cursor, hourly=merged)
        folded += taken
        if taken < PENDING_TAKEN_MAX:
            return folded


def summaries_fold(*, cursor: Any, hourly: Mapping[tuple[int, int], Sequence[Any]]) -> None:
    """Add a fold's deltas, ``{(monitor_id, hour epoch seconds): rollup values}`` (values
    in ``telemetry.rollups.ROLLUP_COLUMNS`` order), to the summaries, inside the fold's
    transaction (``cursor``: its DB-API cursor).

    Rows are locked ascending, 500 a statement, reading only their current day and hour;
    a monitor's first row is inserted empty first (``INSERT IGNORE``), so two folds
    meeting on a new monitor lock the same row instead of both inserting. A monitor
    whose deltas are all of its current hour (most folds: one every 30 s or so) is one
    in-place addition to its counters in one statement for the chunk; the others (a new
    hour, a late result) are read whole and rewritten."""
    per_monitor: dict[int, HourDeltas] = defaultdict(dict)
    for (monitor_id, hour), values in hourly.items():
        per_monitor[monitor_id][hour] = values
    for chunk in ascending_chunks(per_monitor):
        current = _lock(cursor, chunk)
        missing = [pk for pk in chunk if pk not in current]
        if missing:
            cursor.execute(
                f"INSERT IGNORE INTO {TABLE} (monitor_id, days, hours) VALUES "  # noqa: S608
                + ",".join(f"({int(pk)}, '', '')" for pk in missing)
            )
            current.update(_lock(cursor, missing))
        in_place: list[int] = []
        rewrite: list[int] = []
        for pk in chunk:
            hours = per_monitor[pk]
            (in_place if set(hours) == {current[pk] * 3600} else rewrite).append(pk)
        _add_in_place(cursor, {pk: per_monitor[pk][current[pk] * 3600] for pk in in_place})
        _rewrite(cursor, {pk: per_monitor[pk] for pk in rewrite})


def _lock(cursor: Any, ids: list[int]) -> dict[int, int]:
    """Lock the rows of ``ids`` (ascending); their current hour index by id."""
    cursor.execute(
        f"SELECT monitor_id, hour_index FROM {TABLE} "  # noqa: S608
        f"WHERE monitor_id IN ({sql_ids(ids)}) ORDER BY monitor_id FOR UPDATE"
    )
    return {int(pk): int(hour) for pk, hour in cursor.fetchall()}


def _add_in_place(cursor: Any, deltas: dict[int, Sequence[Any]]) -> None:
    """Add each monitor's delta of its current hour (and so day) to its counters."""
    if not deltas:
        return
    # Only ints are formatted into the statement.
    values = ",".join(
        f"({int(pk)},{int(v[0])},{int(v[1])},{int(v[2])},'','')" for pk, v in deltas.items()
    )
    cursor.execute(
        f"INSERT INTO {TABLE} (monitor_id, hour_checks, hour_failures, hour_latency_ms, "  # noqa: S608
        f"days, hours) VALUES {values} ON DUPLICATE KEY UPDATE "
        + ", ".join(
            f"{period}_{name} = {period}_{name} + VALUES(hour_{name})"
            for period in ("day", "hour")
            for name in ("checks", "failures", "latency_ms")
        )
    )


def _rewrite(cursor: Any, deltas: dict[int, HourDeltas]) -> None:
    """Read whole the (locked) rows of ``deltas``' monitors, add the deltas, write them."""
    if not deltas:
        return
    cursor.execute(
        f"SELECT monitor_id, {COLUMNS} FROM {TABLE} "  # noqa: S608
        f"WHERE monitor_id IN ({sql_ids(deltas)})"
    )
    rings = {int(pk): _rings(row) for pk, *row in cursor.fetchall()}
    for pk, hours in deltas.items():
        days_ring, hours_ring = rings[pk]
        for hour, values in hours.items():
            checks, failures, latency = int(values[0]), int(values[1]), int(values[2])
            days_ring.add(hour // 86400, checks, failures, latency)
            hours_ring.add(hour // 3600, checks, failures, latency)
    _write(cursor, rings)


def _write(cursor: Any, rings: dict[int, tuple[Ring, Ring]]) -> None:
    if not rings:
        return
    columns = [c.strip() for c in COLUMNS.split(",")]
    cursor.execute(
        f"INSERT INTO {TABLE} (monitor_id, {COLUMNS}) VALUES "  # noqa: S608
        + ",".join(["(" + ", ".join(["%s"] * (1 + len(columns))) + ")"] * len(rings))
        + " ON DUPLICATE KEY UPDATE "
        + ", ".join(f"{c} = VALUES({c})" for c in columns),
        [value for pk, (d, h) in rings.items() for value in (pk, *_row(d, h))],
    )


def summaries_rebuild(*, monitor_ids: Iterable[int], now: dt.datetime | None = None) -> int:
    """Recompute the summaries of ``monitor_ids`` from the rollups (the last ``DAYS``
    days of ``check_rollup_daily``, the last ``HOURS`` hours of ``check_rollup_hourly``,
    by their primary keys), replacing what was there; returns how many rows it wrote.
    For an upgrade, or for rollups written around the fold. The deltas waiting for the
    summaries are folded first: the rollups hold them already, so a rebuilt row must
    not take them again (run it while ingest is stopped, as a fold meanwhile may be
    counted twice or not at all)."""
    summaries_fold_pending()
    now = now or dt.datetime.now(dt.UTC)
    today = now.astimezone(dt.UTC).date()
    first_day = today - dt.timedelta(days=DAYS - 1)
    first_hour = dt.datetime.fromtimestamp(
        (int(now.timestamp()) // 3600 - HOURS + 1) * 3600, tz=dt.UTC
    ).replace(tzinfo=None)
    written = 0
    with connection.cursor() as cursor:
        for chunk in ascending_chunks(monitor_ids):
            rows = {pk: (Ring(DAYS), Ring(HOURS)) for pk in chunk}
            ids = sql_ids(chunk)
            cursor.execute(
                "SELECT monitor_id, DATEDIFF(day, '1970-01-01'), checks, failures, "  # noqa: S608
                f"latency_sum_ms FROM check_rollup_daily WHERE monitor_id IN ({ids}) "
                "AND day >= %s ORDER BY monitor_id, day",
                [first_day],
            )
            for pk, index, checks, failures, latency in cursor.fetchall():
                rows[pk][0].add(int(index), int(checks), int(failures), int(latency))
            cursor.execute(
                "SELECT monitor_id, TIMESTAMPDIFF(HOUR, '1970-01-01', hour_start), "  # noqa: S608
                "checks, failures, latency_sum_ms "
                f"FROM check_rollup_hourly WHERE monitor_id IN ({ids}) AND hour_start >= %s "
                "ORDER BY monitor_id, hour_start",
                [first_hour],
            )
            for pk, index, checks, failures, latency in cursor.fetchall():
                rows[pk][1].add(int(index), int(checks), int(failures), int(latency))
            _write(cursor, rows)
            written += len(rows)
    return written
