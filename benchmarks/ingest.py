"""Ingest throughput: the real path against row-by-row inserts and LOAD DATA.

The same results go three ways into an empty ``check_result``:

- the real path: pushed into the Redis buffer as probe workers do, then drained by
  ``manage.py ingest --once`` (take, parse, one transaction of LOAD DATA LOCAL plus
  one row of rollup checks, ack; at the end the fold into the hourly and daily
  rollups), timed from its first take to the empty buffer and folded rollups;
- row-by-row: one autocommitted single-row INSERT per result (no rollups), the
  naive baseline;
- LOAD DATA LOCAL INFILE of a prepared file in one transaction (no rollups, no
  Redis, no validation): the ceiling.

and, to show where the time goes: the real path with two ``manage.py ingest``
processes in parallel; ingest's own store alone (rendering plus LOAD DATA, or plus
the INSERT it falls back to, 1,000 rows a transaction, no Redis, no parsing, no
rollups); and LOAD DATA of prepared files 1,000 rows a transaction (ingest's
transaction size until ``TELEMETRY_INGEST_BATCH_SIZE`` became 10,000; the real path
uses the setting).

Keys: ``ingest.rows_per_second``, ``ingest.row_by_row_rows_per_second``,
``ingest.load_data_rows_per_second``, ``ingest.transactions_per_1000_results``
(server-wide Com_commit during the one-process drain), plus
``ingest.headroom_at_100k_monitors_per_minute``
(real rate / 1,667 results/s), ``ingest.two_processes_rows_per_second``,
``ingest.store_alone_rows_per_second``, ``ingest.multi_row_insert_rows_per_second``
and ``ingest.load_data_1000_rows_per_second``.

Run alone: ``python -m benchmarks.ingest [--quick]`` with DATABASE_URL/REDIS_URL set.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

from benchmarks import _telemetry as t

PER_SECOND_AT_100K_A_MINUTE = 100_000 / 60


def run(*, quick: bool, report: dict[str, object]) -> None:
    t.setup_django()

    total = 5_000 if quick else 100_000
    by_row = 2_000 if quick else 20_000
    monitors = t.ensure_monitors(1_000 if quick else 10_000)
    results = t.make_results(monitors, total)
    rows = [r.to_wire() for r in results]
    print(f"ingest: {total} results over {len(monitors)} monitors")

    t.empty_telemetry()
    push_seconds = t.push_all(results)
    print(f"  pushed into Redis in {push_seconds:.2f} s ({total / push_seconds:,.0f}/s)")
    commits = t.global_status("Com_commit")
    real = _processes(total, 1)
    commits = t.global_status("Com_commit") - commits
    report["ingest.rows_per_second"] = round(real)
    report["ingest.transactions_per_1000_results"] = round(commits * 1000 / total, 3)
    print(f"  real path, one process: {real:,.0f} rows/s, {commits} commits for {total} results")

    t.empty_telemetry()
    t.push_all(results)
    two = _processes(total, 2)
    report["ingest.two_processes_rows_per_second"] = round(two)
    print(f"  real path, two processes: {two:,.0f} rows/s")

    for load_data, key, label in (
        (True, "ingest.store_alone_rows_per_second", "LOAD DATA"),
        (False, "ingest.multi_row_insert_rows_per_second", "multi-row INSERT (the fallback)"),
    ):
        t.empty_telemetry()
        rate = _store_alone(rows, load_data=load_data)
        report[key] = round(rate)
        print(f"  ingest's store alone, {label}, 1,000 a transaction: {rate:,.0f} rows/s")

    t.empty_telemetry()
    report["ingest.row_by_row_rows_per_second"] = round(_row_by_row(rows[:by_row]))
    print(f"  row by row ({by_row} rows): {report['ingest.row_by_row_rows_per_second']:,} rows/s")

    t.empty_telemetry()
    chunked = _load_data(rows, per_transaction=1000)
    report["ingest.load_data_1000_rows_per_second"] = round(chunked)
    print(f"  LOAD DATA of prepared files, 1,000 rows a transaction: {chunked:,.0f} rows/s")
    t.empty_telemetry()
    load = _load_data(rows)
    report["ingest.load_data_rows_per_second"] = round(load)
    print(f"  LOAD DATA of one prepared file, one transaction: {load:,.0f} rows/s")
    report["ingest.headroom_at_100k_monitors_per_minute"] = round(
        real / PER_SECOND_AT_100K_A_MINUTE, 1
    )
    t.empty_telemetry()


def _processes(total: int, count: int) -> float:
    """``count`` ``manage.py ingest --once`` processes on the same backlog, timed from
    the moment the first entry is taken (so Django's start-up is not counted) to all
    of them done (buffer empty, checks folded into the rollups)."""
    from telemetry.buffer import GROUP, STREAM_KEY, buffer_client

    root = Path(__file__).resolve().parent.parent
    processes = [
        subprocess.Popen(
            [sys.executable, "manage.py", "ingest", "--once", "--consumer", f"bench-{n}"],
            cwd=root,
            stdout=subprocess.DEVNULL,
        )
        for n in range(count)
    ]
    client = buffer_client()
    while all(p.poll() is None for p in processes):
        try:
            if client.xpending(STREAM_KEY, GROUP)["pending"]:
                break
        except redis.ResponseError:  # no group yet
            pass
        time.sleep(0.002)
    started = time.perf_counter()
    for process in processes:
        process.wait()
    seconds = time.perf_counter() - started
    stored = t.count_rows()
    assert stored == total, f"{stored} of {total} results stored"
    return total / seconds


def _store_alone(rows: list, *, load_data: bool) -> float:
    """Ingest's own insert (rendering included) in 1,000-row transactions: no Redis,
    no parsing, no rollups."""
    from django.conf import settings
    from django.db import connection, transaction

    from telemetry.ingest.store import rows_insert

    previous, settings.TELEMETRY_INGEST_LOAD_DATA = settings.TELEMETRY_INGEST_LOAD_DATA, load_data
    try:
        started = time.perf_counter()
        for offset in range(0, len(rows), 1000):
            with transaction.atomic():
                rows_insert(connection.connection.cursor(), rows[offset : offset + 1000])
        return len(rows) / (time.perf_counter() - started)
    finally:
        settings.TELEMETRY_INGEST_LOAD_DATA = previous


def _sql_rows(rows: list) -> list[list]:
    """Wire rows cut to check_result's columns, their epoch-millisecond times as
    DATETIME(3) text."""
    from telemetry.ingest import COLUMNS
    from telemetry.ingest.store import datetime_text

    times = {1, 2, 12}  # scheduled_at, started_at, tls_expires_at
    return [
        [
            datetime_text(v) if i in times and v is not None else v
            for i, v in enumerate(row[: len(COLUMNS)])
        ]
        for row in rows
    ]


def _row_by_row(rows: list) -> float:
    from telemetry.ingest import COLUMNS

    rows = _sql_rows(rows)
    conn = t.raw_connection(autocommit=True)
    cursor = conn.cursor()
    columns, placeholders = ", ".join(COLUMNS), ", ".join(["%s"] * len(COLUMNS))
    sql = f"INSERT IGNORE INTO check_result ({columns}) VALUES ({placeholders})"  # noqa: S608
    started = time.perf_counter()
    for row in rows:
        cursor.execute(sql, row)
    seconds = time.perf_counter() - started
    conn.close()
    return len(rows) / seconds


def _load_data(rows: list, *, per_transaction: int | None = None) -> float:
    """LOAD DATA LOCAL of files prepared beforehand (not timed), all rows in one
    transaction or ``per_transaction`` a transaction; the ceiling."""
    from telemetry.ingest import COLUMNS

    def field(value: object) -> str:
        if value is None:
            return "\\N"
        if value is True or value is False:
            return str(int(value))
        return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")

    rows = _sql_rows(rows)
    size = per_transaction or len(rows)
    paths = []
    for offset in range(0, len(rows), size):
        with tempfile.NamedTemporaryFile("w", suffix=".tsv", delete=False) as handle:
            handle.writelines(
                "\t".join(map(field, row)) + "\n" for row in rows[offset : offset + size]
            )
            paths.append(handle.name)
    conn = t.raw_connection(local_infile=True, autocommit=False)
    cursor = conn.cursor()
    sql = f"LOAD DATA LOCAL INFILE %s IGNORE INTO TABLE check_result ({', '.join(COLUMNS)})"
    try:
        stored = 0
        started = time.perf_counter()
        for path in paths:
            cursor.execute(sql, [path])
            stored += cursor.rowcount
            conn.commit()
        seconds = time.perf_counter() - started
        assert stored == len(rows), stored
    finally:
        conn.close()
        for path in paths:
            os.unlink(path)
    return len(rows) / seconds


if __name__ == "__main__":
    figures: dict[str, object] = {}
    run(quick="--quick" in sys.argv, report=figures)
    print(json.dumps(figures, indent=2))
