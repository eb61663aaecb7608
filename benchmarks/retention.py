"""Retention: dropping a day of raw results with DROP PARTITION versus DELETE.

A scratch copy of ``check_result`` (same DDL and partitioning, made with CREATE
TABLE ... LIKE) gets two days with the same number of rows (over a million each at
full scale). One day goes with ``ALTER TABLE ... DROP PARTITION`` (what
``telemetry.partitions`` does), the other with ``DELETE ... WHERE scheduled_at`` in
that day, committed. The live tables are not touched.

Keys: ``retention.rows`` (rows per day), ``retention.drop_partition_s``,
``retention.delete_s``.

Run alone: ``python -m benchmarks.retention [--quick]`` with DATABASE_URL set.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time

from benchmarks import _telemetry as t

TABLE = "bench_retention_result"

COLUMNS = (
    "monitor_id, scheduled_at, started_at, duration_ms, ok, status_code, failure, error, "
    "dns_ms, connect_ms, tls_ms, ttfb_ms, tls_expires_at"
)


def run(*, quick: bool, report: dict[str, object]) -> None:
    t.setup_django()
    rows = 20_000 if quick else 1_200_000
    first = dt.date(2026, 1, 10)
    second = first + dt.timedelta(days=1)
    conn = t.raw_connection(autocommit=True)
    cursor = conn.cursor()
    try:
        _make_table(cursor, first)
        print(f"retention: filling two days of {rows:,} rows each")
        _fill_day(cursor, first, rows)
        cursor.execute(
            # Columns named: the table grows (region), a copy must not depend on it.
            f"INSERT INTO {TABLE} ({COLUMNS}) SELECT monitor_id, "  # noqa: S608
            "scheduled_at + INTERVAL 1 DAY, started_at + INTERVAL 1 DAY, duration_ms, ok, "
            "status_code, failure, error, dns_ms, connect_ms, tls_ms, ttfb_ms, tls_expires_at "
            f"FROM {TABLE} PARTITION (p{first:%Y%m%d})"
        )
        counts = _day_counts(cursor, first, second)
        assert counts == [rows, rows], counts

        started = time.perf_counter()
        cursor.execute(f"ALTER TABLE {TABLE} DROP PARTITION p{first:%Y%m%d}")
        drop = time.perf_counter() - started

        started = time.perf_counter()
        cursor.execute(
            f"DELETE FROM {TABLE} WHERE scheduled_at >= %s AND scheduled_at < %s",  # noqa: S608
            [second, second + dt.timedelta(days=1)],
        )
        delete = time.perf_counter() - started
        assert _day_counts(cursor, first, second) == [0, 0]
    finally:
        cursor.execute(f"DROP TABLE IF EXISTS {TABLE}")
        conn.close()
    report["retention.rows"] = rows
    report["retention.drop_partition_s"] = round(drop, 3)
    report["retention.delete_s"] = round(delete, 3)
    print(f"  DROP PARTITION: {drop:.3f} s; DELETE: {delete:.3f} s ({rows:,} rows)")


def _make_table(cursor: object, first: dt.date) -> None:
    execute = cursor.execute  # type: ignore[attr-defined]
    execute(f"DROP TABLE IF EXISTS {TABLE}")
    execute(f"CREATE TABLE {TABLE} LIKE check_result")
    # Its own, fixed layout: the two days under test, then pmax.
    execute(
        f"ALTER TABLE {TABLE} PARTITION BY RANGE COLUMNS (scheduled_at) ("
        + ", ".join(
            f"PARTITION p{day:%Y%m%d} VALUES LESS THAN ('{day + dt.timedelta(days=1)}')"
            for day in (first, first + dt.timedelta(days=1))
        )
        + ", PARTITION pmax VALUES LESS THAN (MAXVALUE))"
    )


def _fill_day(cursor: object, day: dt.date, rows: int) -> None:
    """``rows`` results in one day: 1,000 monitors, spread evenly over the day,
    generated in SQL from a digits cross join (portable to MySQL 8 and MariaDB)."""
    execute = cursor.execute  # type: ignore[attr-defined]
    execute("DROP TEMPORARY TABLE IF EXISTS bench_digits")
    execute("CREATE TEMPORARY TABLE bench_digits (d INT NOT NULL PRIMARY KEY)")
    execute("INSERT INTO bench_digits VALUES (0),(1),(2),(3),(4),(5),(6),(7),(8),(9)")
    digits = len(str(rows - 1))
    numbers = " + ".join(f"d{i}.d * {10**i}" for i in range(digits))
    joins = ", ".join(f"bench_digits d{i}" for i in range(digits))
    monitors = 1000
    per_monitor = -(-rows // monitors)
    step_ms = 86_400_000 // per_monitor
    execute(
        f"INSERT INTO {TABLE} (monitor_id, scheduled_at, started_at, duration_ms, ok, "  # noqa: S608
        "status_code, failure, error, dns_ms, connect_ms, tls_ms, ttfb_ms) "
        f"SELECT n % {monitors} + 1, "
        f"TIMESTAMP('{day}') + INTERVAL (n DIV {monitors}) * {step_ms} * 1000 MICROSECOND, "
        f"TIMESTAMP('{day}') + INTERVAL (n DIV {monitors}) * {step_ms} * 1000 + 40000 MICROSECOND, "
        "100 + n % 400, n % 20 <> 0, IF(n % 20 <> 0, 200, NULL), "
        "IF(n % 20 <> 0, NULL, 'timeout'), IF(n % 20 <> 0, '', 'timed out after 10 s'), "
        "3, 10, 20, 80 "
        f"FROM (SELECT {numbers} AS n FROM {joins}) numbers WHERE n < {rows}"
    )


def _day_counts(cursor: object, first: dt.date, second: dt.date) -> list[int]:
    execute = cursor.execute  # type: ignore[attr-defined]
    counts = []
    for day in (first, second):
        execute(
            f"SELECT COUNT(*) FROM {TABLE} WHERE scheduled_at >= %s AND scheduled_at < %s",  # noqa: S608
            [day, day + dt.timedelta(days=1)],
        )
        counts.append(int(cursor.fetchone()[0]))  # type: ignore[attr-defined]
    return counts


if __name__ == "__main__":
    figures: dict[str, object] = {}
    run(quick="--quick" in sys.argv, report=figures)
    print(json.dumps(figures, indent=2))
