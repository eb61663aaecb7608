from __future__ import annotations

import datetime as dt

import pytest

from telemetry.buffer import buffer_client, buffer_push
from telemetry.ingest import ingest_batch
from telemetry.records import CheckResult, FailureKind
from telemetry.stats import stats_read
from tests.factories import MonitorFactory

MINUTE = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)


def result(monitor_id: int, second: int, *, ok: bool, lag_ms: int) -> CheckResult:
    slot = MINUTE + dt.timedelta(seconds=second)
    return CheckResult(
        monitor_id=monitor_id,
        scheduled_at=slot,
        started_at=slot + dt.timedelta(milliseconds=lag_ms),
        duration_ms=30,
        ok=ok,
        status_code=200 if ok else 500,
        failure=None if ok else FailureKind.STATUS,
    )


def test_pushed_batches_count_checks_failures_and_start_lag_per_minute(redis_client):
    buffer_push(results=[result(1, 0, ok=True, lag_ms=100), result(2, 10, ok=False, lag_ms=300)])
    buffer_push(results=[result(3, 20, ok=True, lag_ms=200)])

    stats = stats_read(client=buffer_client(), now=MINUTE + dt.timedelta(seconds=75))

    assert stats.checks_per_second == pytest.approx(3 / 60)
    assert stats.failures_per_second == pytest.approx(1 / 60)
    assert stats.start_lag_seconds == pytest.approx(0.2)


def test_a_minute_without_checks_reads_as_zero(redis_client):
    stats = stats_read(client=buffer_client(), now=MINUTE)

    assert (stats.checks_per_second, stats.start_lag_seconds, stats.ingest_batch_size) == (0, 0, 0)


@pytest.mark.django_db
def test_ingest_records_its_last_batch(redis_client):
    monitors = MonitorFactory.create_batch(3)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    buffer_push(
        results=[
            CheckResult(
                monitor_id=m.pk,
                scheduled_at=now - dt.timedelta(seconds=5),
                started_at=now - dt.timedelta(seconds=5),
                duration_ms=10,
                ok=True,
            )
            for m in monitors
        ]
    )

    outcome = ingest_batch(consumer="stats-test")
    stats = stats_read(client=buffer_client(), now=dt.datetime.now(dt.UTC))

    assert outcome.stored == 3
    assert stats.ingest_batch_size == 3
    assert 4 <= stats.ingest_lag_seconds < 60
    assert (stats.ingest_transactions_total, stats.ingest_results_total) == (1, 3)


def test_metrics_expose_the_check_path_figures(client, redis_client, db, settings):
    settings.SENTINEL_METRICS_TOKEN = "scrape-token"
    buffer_push(results=[result(1, 0, ok=False, lag_ms=50)])

    body = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token").content.decode()

    for name in (
        "sentinel_checks_per_second",
        "sentinel_check_failures_per_second",
        "sentinel_check_start_lag_seconds",
        "sentinel_ingest_batch_size",
        "sentinel_ingest_lag_seconds",
        "sentinel_ingest_transactions_total",
        "sentinel_ingest_results_total",
        "sentinel_rollup_pending_results",
        "sentinel_rollup_lag_seconds",
    ):
        assert f"\n{name} " in body
