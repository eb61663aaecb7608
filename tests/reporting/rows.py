"""Check results for reporting tests, stored the way the telemetry tables hold them.

Raw rows are plain INSERTs; the rollups are then rebuilt for the given monitors with
one aggregate INSERT ... SELECT per table, and their summaries from those (a test
shortcut: production maintains both incrementally in the rollup fold). The expected
figures of each test are computed in Python from the same ``CheckResult`` list, never
by the code under test.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterable, Sequence

from django.db import connection

from telemetry.histogram import BUCKET_COLUMNS, bucket_sums_sql
from telemetry.records import CheckResult, FailureKind
from telemetry.summary import summaries_rebuild


def _naive(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(tzinfo=None)


def store_results(results: Sequence[CheckResult]) -> None:
    with connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO check_result (monitor_id, scheduled_at, started_at, duration_ms, ok, "
            "status_code, failure, error, tls_expires_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [
                (
                    r.monitor_id,
                    _naive(r.scheduled_at),
                    _naive(r.started_at),
                    r.duration_ms,
                    r.ok,
                    r.status_code,
                    r.failure.value if r.failure else None,
                    r.error,
                    _naive(r.tls_expires_at) if r.tls_expires_at else None,
                )
                for r in results
            ],
        )
    rebuild_rollups(sorted({r.monitor_id for r in results}))


def rebuild_rollups(monitor_ids: Iterable[int]) -> None:
    ids = list(monitor_ids)
    marks = ", ".join(["%s"] * len(ids))
    columns = ", ".join(BUCKET_COLUMNS)
    aggregates = (
        "COUNT(*), SUM(ok = 0), COALESCE(SUM(IF(ok = 1, duration_ms, 0)), 0), "
        "MIN(IF(ok = 1, duration_ms, NULL)), MAX(IF(ok = 1, duration_ms, NULL)), "
        + bucket_sums_sql()
    )
    head = "checks, failures, latency_sum_ms, latency_min_ms, latency_max_ms"
    with connection.cursor() as cursor:
        for table, column, expression in (
            (
                "check_rollup_hourly",
                "hour_start",
                "DATE_FORMAT(scheduled_at, '%%Y-%%m-%%d %%H:00:00')",
            ),
            ("check_rollup_daily", "day", "DATE(scheduled_at)"),
        ):
            cursor.execute(f"DELETE FROM {table} WHERE monitor_id IN ({marks})", ids)
            cursor.execute(
                f"INSERT INTO {table} (monitor_id, {column}, {head}, {columns}) "
                f"SELECT monitor_id, {expression} AS period, {aggregates} FROM check_result "
                f"WHERE monitor_id IN ({marks}) GROUP BY monitor_id, period",
                ids,
            )
    summaries_rebuild(monitor_ids=ids)


def make_results(
    *,
    monitor_id: int,
    end: dt.datetime,
    span: dt.timedelta,
    every: dt.timedelta,
    failure_rate: float = 0.05,
    seed: int = 1,
) -> list[CheckResult]:
    """Checks from ``end - span`` to ``end`` every ``every``, latencies spread over
    several histogram buckets, some failures with reasons."""
    rng = random.Random(seed)
    results, moment = [], end - span
    while moment < end:
        ok = rng.random() >= failure_rate
        duration = int(rng.lognormvariate(4.6, 0.6)) if ok else rng.choice([10000, 35, 120])
        results.append(
            CheckResult(
                monitor_id=monitor_id,
                scheduled_at=moment,
                started_at=moment + dt.timedelta(milliseconds=rng.randint(0, 900)),
                duration_ms=duration,
                ok=ok,
                status_code=200 if ok else 503,
                failure=None if ok else FailureKind.STATUS,
                error="" if ok else "expected 200-299, got 503",
            )
        )
        moment += every
    return results
