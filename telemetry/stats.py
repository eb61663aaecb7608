"""Counters of the check path, kept in Redis for ``/metrics``.

Probe workers count their checks by monitor kind and outcome, and add them to two
histograms (check duration, and schedule lag: from a check's slot to its start), in
the same round trip that pushes their results (``buffer_push``): one ``HINCRBY`` per
(kind, outcome), per bucket that moved and per sum, for each batch, never per
check. Ingest adds its transactions and results to running totals after each commit
and remembers its last batch (size, lag).

Counting in Redis (``core.counters``) makes the counters fleet-wide and monotonic
without Prometheus' multi-process mode: nothing here resets them. A histogram is kept
one field per bucket (not cumulative; the reader adds them up into Prometheus' ``le``
buckets), each named after its upper bound in ms, so that changing a bound starts
that bucket from zero rather than counting under a wrong bound.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from core.counters import counts_decode
from telemetry.histogram import BUCKET_BOUNDS_MS
from telemetry.records import CheckResult

# Checks by "{kind}:{outcome}" (outcome: "ok" or a FailureKind value).
CHECKS_KEY = "sentinel:counters:checks"
# Check durations: "{kind}:{bound_ms}" and "{kind}:inf" per bucket, "{kind}:sum_ms".
DURATION_KEY = "sentinel:counters:check_duration"
# Schedule lag: "{bound_ms}" and "inf" per bucket, "sum_us" (microseconds).
SCHEDULE_LAG_KEY = "sentinel:counters:schedule_lag"
INGEST_KEY = "sentinel:stats:ingest"  # ingest's last batch (JSON)
# Running totals (never expire): transactions ingest committed, the results in them,
# and of those the ones stored and the duplicates (already stored: a replay).
INGEST_TOTALS_KEY = "sentinel:stats:ingest:totals"
KEEP_SECONDS = 600

OK = "ok"
UNKNOWN = "unknown"  # a monitor kind the pusher did not give, a failure without a kind
# The rollups' latency buckets (telemetry.histogram): one set of bounds for durations.
DURATION_BOUNDS_MS: tuple[int, ...] = BUCKET_BOUNDS_MS
# The pipeline's goal is no check more than 2 s late: finer below it than above.
SCHEDULE_LAG_BOUNDS_MS: tuple[int, ...] = (
    5, 10, 25, 50, 100, 250, 500, 1000, 2000, 5000, 10000, 30000, 60000,
)  # fmt: skip
INF_FIELD = "inf"
SCHEDULE_LAG_FIELDS: tuple[str, ...] = (*map(str, SCHEDULE_LAG_BOUNDS_MS), INF_FIELD)
_MILLISECOND = dt.timedelta(milliseconds=1)


@dataclass(frozen=True)
class Histogram:
    """A histogram as Prometheus exposes it: cumulative counts per upper bound in
    seconds (the last one ``inf``), and the sum of the observations in seconds."""

    buckets: tuple[tuple[float, int], ...]
    sum_seconds: float

    @property
    def count(self) -> int:
        """How many observations: the ``+Inf`` bucket's count."""
        return self.buckets[-1][1]


@dataclass(frozen=True)
class CheckPathStats:
    """Ingest's last batch and running totals, and the probe workers' check counters
    (raw hash fields; ``checks``, ``duration`` and ``schedule_lag`` read them)."""

    ingest_batch_size: int
    ingest_lag_seconds: float  # from the oldest check of that batch to its commit
    ingest_transactions_total: int = 0  # MySQL transactions ingest committed, ever
    ingest_results_total: int = 0  # results in those transactions
    ingest_stored_total: int = 0  # of those, rows inserted into check_result
    ingest_duplicates_total: int = 0  # of those, results already stored (a replay)
    check_fields: dict[str, int] = field(default_factory=dict)
    duration_fields: dict[str, int] = field(default_factory=dict)
    schedule_lag_fields: dict[str, int] = field(default_factory=dict)

    def checks(self) -> dict[tuple[str, str], int]:
        """Checks counted, by (monitor kind, outcome)."""
        checks: dict[tuple[str, str], int] = {}
        for name, count in self.check_fields.items():
            kind, _, outcome = name.partition(":")
            checks[(kind, outcome)] = count
        return checks

    def duration_kinds(self) -> set[str]:
        """The monitor kinds that have a duration histogram."""
        return {name.partition(":")[0] for name in self.duration_fields}

    def duration(self, kind: str) -> Histogram:
        """The check duration histogram of monitors of ``kind`` (zeros if none)."""
        prefix = f"{kind}:"
        fields = {
            name.removeprefix(prefix): count
            for name, count in self.duration_fields.items()
            if name.startswith(prefix)
        }
        return _histogram(fields, DURATION_BOUNDS_MS, fields.get("sum_ms", 0) / 1000)

    def schedule_lag(self) -> Histogram:
        """The schedule lag histogram: from each check's slot to its start."""
        fields = self.schedule_lag_fields
        return _histogram(fields, SCHEDULE_LAG_BOUNDS_MS, fields.get("sum_us", 0) / 1e6)


def _histogram(
    fields: Mapping[str, int], bounds_ms: Sequence[int], sum_seconds: float
) -> Histogram:
    running = 0
    buckets: list[tuple[float, int]] = []
    for bound in (*map(str, bounds_ms), INF_FIELD):
        running += fields.get(bound, 0)
        buckets.append((float(bound) / 1000, running))
    return Histogram(tuple(buckets), sum_seconds)


def stats_count_checks(pipe: Any, results: Sequence[CheckResult], kinds: Mapping[int, str]) -> None:
    """Add ``results`` to the check counters and histograms on ``pipe`` (a Redis
    pipeline). ``kinds`` maps each result's monitor id to the monitor's kind (a
    monitor missing from it counts as "unknown")."""
    if results:
        _tally_add(pipe, _tally(results, kinds))
        _regions_seen(pipe, results)


# Each probe region's newest result as the buffer received it: "<region>:seen_ms" (when,
# epoch ms) and "<region>:lag_ms" (how late its newest push's checks started, at most).
REGIONS_KEY = "sentinel:stats:regions"


def _regions_seen(pipe: Any, results: Sequence[CheckResult]) -> None:
    lags: dict[str, float] = {}
    for result in results:
        lag_ms = max(0.0, (result.started_at - result.scheduled_at) / _MILLISECOND)
        lags[result.region] = max(lags.get(result.region, 0.0), lag_ms)
    now_ms = time.time_ns() // 1_000_000
    for region, lag_ms in lags.items():
        pipe.hset(
            REGIONS_KEY, mapping={f"{region}:seen_ms": now_ms, f"{region}:lag_ms": round(lag_ms)}
        )


@dataclass(frozen=True)
class RegionSeen:
    """When a region's results last reached the buffer (epoch ms) and how late its
    newest checks started (ms)."""

    seen_ms: int
    lag_ms: int


def stats_regions(*, client: redis.Redis) -> dict[str, RegionSeen]:
    """Every region whose results reached the buffer, by name (``REGIONS_KEY``)."""
    raw: dict[bytes, bytes] = client.hgetall(REGIONS_KEY)  # type: ignore[assignment]
    fields = {k.decode(): int(v) for k, v in raw.items()}
    return {
        name[: -len(":seen_ms")]: RegionSeen(
            value, fields.get(name.replace(":seen_ms", ":lag_ms"), 0)
        )
        for name, value in fields.items()
        if name.endswith(":seen_ms")
    }


@dataclass
class _Tally:
    """A batch's checks, counted in memory before one HINCRBY per field that moved."""

    checks: dict[tuple[str, str], int]  # (kind, outcome)
    durations: dict[str, list[int]]  # by kind, per bucket of DURATION_BOUNDS_MS
    duration_sums_ms: dict[str, int]
    lags: list[int]  # per bucket of SCHEDULE_LAG_BOUNDS_MS
    lag_sum_ms: float


def _tally(results: Sequence[CheckResult], kinds: Mapping[int, str]) -> _Tally:
    # Runs for every check a probe worker makes: plain locals, one pass.
    checks: dict[tuple[str, str], int] = {}
    durations: dict[str, list[int]] = {}
    duration_sums: dict[str, int] = {}
    lags = [0] * len(SCHEDULE_LAG_FIELDS)
    lag_sum_ms = 0.0
    for result in results:
        kind = kinds.get(result.monitor_id, UNKNOWN)
        key = (kind, OK if result.ok else (result.failure or UNKNOWN))
        checks[key] = checks.get(key, 0) + 1
        counts = durations.get(kind)
        if counts is None:
            counts = durations[kind] = [0] * (len(DURATION_BOUNDS_MS) + 1)
            duration_sums[kind] = 0
        counts[bisect_left(DURATION_BOUNDS_MS, result.duration_ms)] += 1
        duration_sums[kind] += result.duration_ms
        lag_ms = max(0.0, (result.started_at - result.scheduled_at) / _MILLISECOND)
        lags[bisect_left(SCHEDULE_LAG_BOUNDS_MS, lag_ms)] += 1
        lag_sum_ms += lag_ms
    return _Tally(checks, durations, duration_sums, lags, lag_sum_ms)


def _tally_add(pipe: Any, tally: _Tally) -> None:
    for (kind, outcome), count in tally.checks.items():
        pipe.hincrby(CHECKS_KEY, f"{kind}:{outcome}", count)
    for kind, counts in tally.durations.items():
        for name, count in zip(_duration_fields(kind), counts, strict=True):
            if count:
                pipe.hincrby(DURATION_KEY, name, count)
        pipe.hincrby(DURATION_KEY, f"{kind}:sum_ms", tally.duration_sums_ms[kind])
    for name, count in zip(SCHEDULE_LAG_FIELDS, tally.lags, strict=True):
        if count:
            pipe.hincrby(SCHEDULE_LAG_KEY, name, count)
    pipe.hincrby(SCHEDULE_LAG_KEY, "sum_us", round(tally.lag_sum_ms * 1000))


_DURATION_FIELDS: dict[str, tuple[str, ...]] = {}


def _duration_fields(kind: str) -> tuple[str, ...]:
    names = _DURATION_FIELDS.get(kind)
    if names is None:
        bounds = (*map(str, DURATION_BOUNDS_MS), INF_FIELD)
        names = _DURATION_FIELDS[kind] = tuple(f"{kind}:{bound}" for bound in bounds)
    return names


def stats_record_ingest(
    *,
    client: redis.Redis,
    size: int,
    stored: int,
    duplicates: int,
    oldest_started_ms: int,
    now: dt.datetime,
) -> None:
    """Remember the size and lag of the batch ingest just committed (one transaction
    of ``size`` results, ``stored`` of them inserted and ``duplicates`` stored before,
    the oldest started at ``oldest_started_ms``), and add it to the running totals."""
    if not size:
        return
    lag_s = now.timestamp() - oldest_started_ms / 1000
    record = {"size": size, "lag_s": round(lag_s, 3)}
    pipe = client.pipeline(transaction=False)
    pipe.set(INGEST_KEY, json.dumps(record), ex=KEEP_SECONDS)
    pipe.hincrby(INGEST_TOTALS_KEY, "transactions", 1)
    pipe.hincrby(INGEST_TOTALS_KEY, "results", size)
    if stored:
        pipe.hincrby(INGEST_TOTALS_KEY, "stored", stored)
    if duplicates:
        pipe.hincrby(INGEST_TOTALS_KEY, "duplicates", duplicates)
    pipe.execute()


def stats_read(*, client: redis.Redis) -> CheckPathStats:
    """Ingest's last batch and totals, and the check counters, in one round trip."""
    pipe = client.pipeline(transaction=False)
    pipe.get(INGEST_KEY)
    for key in (INGEST_TOTALS_KEY, CHECKS_KEY, DURATION_KEY, SCHEDULE_LAG_KEY):
        pipe.hgetall(key)
    ingest, *hashes = pipe.execute()
    totals, checks, durations, lags = (counts_decode(raw) for raw in hashes)
    batch = json.loads(ingest) if ingest else {"size": 0, "lag_s": 0.0}
    return CheckPathStats(
        ingest_batch_size=int(batch["size"]),
        ingest_lag_seconds=float(batch["lag_s"]),
        ingest_transactions_total=totals.get("transactions", 0),
        ingest_results_total=totals.get("results", 0),
        ingest_stored_total=totals.get("stored", 0),
        ingest_duplicates_total=totals.get("duplicates", 0),
        check_fields=checks,
        duration_fields=durations,
        schedule_lag_fields=lags,
    )
