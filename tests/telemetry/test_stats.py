"""The check path's counters and histograms in Redis: they move by exactly what a
pushed batch or an ingested batch holds, in the push's one round trip."""

from __future__ import annotations

import datetime as dt

import pytest
import redis

from telemetry.buffer import buffer_client, buffer_push
from telemetry.ingest import ingest_batch
from telemetry.records import CheckResult, FailureKind
from telemetry.stats import CHECKS_KEY, DURATION_KEY, SCHEDULE_LAG_KEY, stats_read
from tests.factories import MonitorFactory

MINUTE = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)


def result(
    monitor_id: int,
    *,
    lag_ms: float = 0,
    duration_ms: int = 30,
    failure: FailureKind | None = None,
) -> CheckResult:
    return CheckResult(
        monitor_id=monitor_id,
        scheduled_at=MINUTE,
        started_at=MINUTE + dt.timedelta(milliseconds=lag_ms),
        duration_ms=duration_ms,
        ok=failure is None,
        status_code=None if failure else 200,
        failure=failure,
    )


def fields(client, key: str) -> dict[str, int]:
    return {name.decode(): int(value) for name, value in client.hgetall(key).items()}


def test_a_pushed_batch_counts_its_checks_by_kind_and_outcome(buffer):
    kinds = {1: "http", 2: "tcp", 3: "tls"}
    buffer_push(
        results=[
            result(1),
            result(1, failure=FailureKind.TIMEOUT),
            result(2),
            result(3, failure=FailureKind.TLS),
            result(1),
        ],
        kinds=kinds,
    )

    assert fields(buffer, CHECKS_KEY) == {
        "http:ok": 2,
        "http:timeout": 1,
        "tcp:ok": 1,
        "tls:tls": 1,
    }

    buffer_push(results=[result(2, failure=FailureKind.REFUSED), result(1)], kinds=kinds)

    assert stats_read(client=buffer_client()).checks() == {
        ("http", "ok"): 3,
        ("http", "timeout"): 1,
        ("tcp", "ok"): 1,
        ("tcp", "refused"): 1,
        ("tls", "tls"): 1,
    }


def test_a_result_whose_monitor_kind_was_not_given_counts_as_unknown(buffer):
    buffer_push(results=[result(7), result(7, failure=FailureKind.DNS)])

    assert fields(buffer, CHECKS_KEY) == {"unknown:ok": 1, "unknown:dns": 1}


def test_each_duration_bucket_moves_by_the_checks_it_holds(buffer):
    # Bounds are inclusive (Prometheus' "le"): 10 ms is in the 10 ms bucket, 11 ms in
    # the 25 ms one, 30,001 ms above the last bound.
    durations = [0, 10, 11, 25, 26, 999, 30_000, 30_001]
    buffer_push(results=[result(1, duration_ms=d) for d in durations], kinds={1: "http"})

    assert fields(buffer, DURATION_KEY) == {
        "http:10": 2,
        "http:25": 2,
        "http:50": 1,
        "http:1000": 1,
        "http:30000": 1,
        "http:inf": 1,
        "http:sum_ms": sum(durations),
    }
    histogram = stats_read(client=buffer_client()).duration("http")
    assert histogram.count == 8
    assert histogram.sum_seconds == pytest.approx(sum(durations) / 1000)
    cumulative = dict(histogram.buckets)
    assert (cumulative[0.01], cumulative[0.025], cumulative[0.05], cumulative[0.75]) == (2, 4, 5, 5)
    assert (cumulative[1.0], cumulative[30.0], cumulative[float("inf")]) == (6, 7, 8)


def test_durations_are_kept_per_monitor_kind(buffer):
    buffer_push(
        results=[result(1, duration_ms=40), result(2, duration_ms=4), result(2, duration_ms=5)],
        kinds={1: "http", 2: "tcp"},
    )
    stats = stats_read(client=buffer_client())

    assert stats.duration_kinds() == {"http", "tcp"}
    assert (stats.duration("http").count, stats.duration("tcp").count) == (1, 2)
    assert dict(stats.duration("tcp").buckets)[0.01] == 2
    assert stats.duration("tls").count == 0  # none yet: zeros, not an error


def test_each_schedule_lag_bucket_moves_by_the_checks_it_holds(buffer):
    lags = [0, 4.5, 5, 5.2, 120, 2000, 2000.5, 70_000]
    buffer_push(results=[result(1, lag_ms=lag) for lag in lags], kinds={1: "http"})

    assert fields(buffer, SCHEDULE_LAG_KEY) == {
        "5": 3,
        "10": 1,
        "250": 1,
        "2000": 1,
        "5000": 1,
        "inf": 1,
        "sum_us": round(sum(lags) * 1000),
    }
    histogram = stats_read(client=buffer_client()).schedule_lag()
    assert histogram.count == 8
    assert histogram.sum_seconds == pytest.approx(sum(lags) / 1000)
    cumulative = dict(histogram.buckets)
    assert (cumulative[0.005], cumulative[0.1], cumulative[2.0], cumulative[60.0]) == (3, 4, 6, 7)


def test_a_check_that_started_before_its_slot_has_no_lag(buffer):
    buffer_push(results=[result(1, lag_ms=-3)], kinds={1: "http"})

    assert fields(buffer, SCHEDULE_LAG_KEY) == {"5": 1, "sum_us": 0}


def test_the_push_is_one_round_trip_with_its_counters(buffer, monkeypatch):
    buffer_push(results=[result(1)], kinds={1: "http"})  # connects (AUTH, SELECT, ...)
    sent: list[bytes] = []
    original = redis.connection.AbstractConnection.send_packed_command

    def send(self, command, check_health=True):
        sent.append(command)
        return original(self, command, check_health)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", send)

    buffer_push(
        results=[result(m, duration_ms=m * 100, lag_ms=m, failure=None) for m in range(1, 40)],
        kinds={m: ("http", "tcp", "tls")[m % 3] for m in range(1, 40)},
    )

    assert len(sent) == 1
    assert fields(buffer, CHECKS_KEY) == {"http:ok": 14, "tcp:ok": 13, "tls:ok": 13}


@pytest.mark.django_db
def test_ingest_counts_its_transactions_and_the_results_it_stored(buffer):
    monitors = MonitorFactory.create_batch(3)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    results = [
        CheckResult(
            monitor_id=m.pk,
            scheduled_at=now - dt.timedelta(seconds=5),
            started_at=now - dt.timedelta(seconds=5),
            duration_ms=10,
            ok=True,
        )
        for m in monitors
    ]
    buffer_push(results=results)

    outcome = ingest_batch(consumer="stats-test")
    stats = stats_read(client=buffer_client())

    assert outcome.stored == 3
    assert stats.ingest_batch_size == 3
    assert 4 <= stats.ingest_lag_seconds < 60
    assert (stats.ingest_transactions_total, stats.ingest_results_total) == (1, 3)
    assert (stats.ingest_stored_total, stats.ingest_duplicates_total) == (3, 0)

    buffer_push(results=results[:2])  # a replay: stored already
    ingest_batch(consumer="stats-test")
    stats = stats_read(client=buffer_client())

    assert (stats.ingest_transactions_total, stats.ingest_results_total) == (2, 5)
    assert (stats.ingest_stored_total, stats.ingest_duplicates_total) == (3, 2)


def test_nothing_counted_reads_as_zero(buffer):
    stats = stats_read(client=buffer_client())

    assert (stats.ingest_batch_size, stats.ingest_transactions_total, stats.checks()) == (0, 0, {})
    assert stats.schedule_lag().count == 0 and stats.schedule_lag().sum_seconds == 0
