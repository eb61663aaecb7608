"""Per-minute figures of the check path, kept in Redis for ``/metrics``.

Probe workers count checks, failures and start lag in the same round trip that pushes
their results (``buffer_push``); ingest records its last batch. Counting in Redis,
not in each process's memory, makes the figures fleet-wide without Prometheus'
multi-process mode, and costs one HINCRBY per figure per batch, not per check.
Minutes are bucketed by the checks' start time and expire after ten minutes.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis

from telemetry.records import CheckResult

CHECKS_KEY = "sentinel:stats:checks:{minute}"
INGEST_KEY = "sentinel:stats:ingest"
# Running totals (never expire): transactions ingest committed and results they stored.
INGEST_TOTALS_KEY = "sentinel:stats:ingest:totals"
KEEP_SECONDS = 600


@dataclass(frozen=True)
class CheckPathStats:
    """The last complete minute of checks, and ingest's last batch."""

    checks_per_second: float
    failures_per_second: float
    start_lag_seconds: float  # mean delay from a check's slot to its start
    ingest_batch_size: int
    ingest_lag_seconds: float  # from the oldest check of that batch to its commit
    ingest_transactions_total: int = 0  # MySQL transactions ingest committed, ever
    ingest_results_total: int = 0  # results in those transactions


def stats_count_checks(pipe: Any, results: Sequence[CheckResult]) -> None:
    """Add ``results`` to their minutes' counters on ``pipe`` (a Redis pipeline)."""
    minutes: dict[int, list[int]] = {}
    for result in results:
        counters = minutes.setdefault(_minute(result.started_at), [0, 0, 0])
        counters[0] += 1
        counters[1] += 0 if result.ok else 1
        lag_ms = (result.started_at - result.scheduled_at).total_seconds() * 1000
        counters[2] += max(0, round(lag_ms))
    for minute, (checks, failures, lag_ms) in minutes.items():
        key = CHECKS_KEY.format(minute=minute)
        pipe.hincrby(key, "checks", checks)
        pipe.hincrby(key, "failures", failures)
        pipe.hincrby(key, "lag_ms", lag_ms)
        pipe.expire(key, KEEP_SECONDS)


def stats_record_ingest(
    *, client: redis.Redis, size: int, oldest_started_ms: int, now: dt.datetime
) -> None:
    """Remember the size and lag of the batch ingest just committed (one transaction
    of ``size`` results, the oldest started at ``oldest_started_ms``), and add it to
    the running totals."""
    if not size:
        return
    lag_s = now.timestamp() - oldest_started_ms / 1000
    record = {"size": size, "lag_s": round(lag_s, 3)}
    pipe = client.pipeline(transaction=False)
    pipe.set(INGEST_KEY, json.dumps(record), ex=KEEP_SECONDS)
    pipe.hincrby(INGEST_TOTALS_KEY, "transactions", 1)
    pipe.hincrby(INGEST_TOTALS_KEY, "results", size)
    pipe.execute()


def stats_read(*, client: redis.Redis, now: dt.datetime) -> CheckPathStats:
    """The figures of the minute before ``now``'s (the last one that is complete)."""
    pipe = client.pipeline(transaction=False)
    pipe.hgetall(CHECKS_KEY.format(minute=_minute(now) - 1))
    pipe.get(INGEST_KEY)
    pipe.hgetall(INGEST_TOTALS_KEY)
    counters, ingest, totals = pipe.execute()
    checks = int(counters.get(b"checks", 0))
    failures = int(counters.get(b"failures", 0))
    lag_ms = int(counters.get(b"lag_ms", 0))
    batch = json.loads(ingest) if ingest else {"size": 0, "lag_s": 0.0}
    return CheckPathStats(
        checks_per_second=checks / 60,
        failures_per_second=failures / 60,
        start_lag_seconds=lag_ms / checks / 1000 if checks else 0.0,
        ingest_batch_size=int(batch["size"]),
        ingest_lag_seconds=float(batch["lag_s"]),
        ingest_transactions_total=int(totals.get(b"transactions", 0)),
        ingest_results_total=int(totals.get(b"results", 0)),
    )


def _minute(moment: dt.datetime) -> int:
    return int(moment.timestamp() // 60)
