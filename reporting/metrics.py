"""``/metrics`` in Prometheus text format, read cheaply on each scrape.

Gauges are computed at scrape time from what is already counted elsewhere (monitor
status counts by index, the Redis buffer's length), in a registry of our own so that
nothing is kept in this process between scrapes and several gunicorn workers answer
alike. A service that is down is reported as a gauge (``sentinel_up``), not a 500.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from django.conf import settings
from django.db import DatabaseError
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

from alerting.models import Notification
from alerting.selectors import notification_counts
from monitors.models import Monitor
from reporting import queries
from telemetry.buffer import buffer_client, buffer_stats
from telemetry.rollups import rollups_pending
from telemetry.stats import stats_read


class SentinelCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        yield from self._monitors()
        yield from self._buffer()
        yield from self._check_path()
        yield from self._notifications()
        if settings.SENTINEL_METRICS_PER_MONITOR:
            yield from self._per_monitor()

    def _monitors(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("sentinel_database_up", "1 if MySQL answered this scrape.")
        by_status = GaugeMetricFamily(
            "sentinel_monitors", "Monitors by live status.", labels=["status"]
        )
        try:
            counts = queries.status_counts(owner_id=None)
        except DatabaseError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        for status in Monitor.Status.values:
            by_status.add_metric([status], counts.get(status, 0))
        yield by_status
        pending = rollups_pending()
        yield GaugeMetricFamily(
            "sentinel_rollup_pending_results",
            "Stored results whose rollup deltas no fold has added yet.",
            value=pending.results,
        )
        yield GaugeMetricFamily(
            "sentinel_rollup_lag_seconds",
            "Age of the oldest pending rollup delta: how far the rollups trail the raw rows.",
            value=pending.oldest_age_seconds,
        )

    def _buffer(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("sentinel_redis_up", "1 if Redis answered this scrape.")
        try:
            stats = buffer_stats()
        except RedisError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield GaugeMetricFamily(
            "sentinel_buffer_depth",
            "Check results waiting in the Redis buffer for ingest.",
            value=stats.depth,
        )
        yield GaugeMetricFamily(
            "sentinel_buffer_oldest_age_seconds",
            "Age of the oldest result waiting in the buffer (0 when empty).",
            value=stats.oldest_age_seconds or 0.0,
        )
        yield GaugeMetricFamily(
            "sentinel_buffer_dead_letters",
            "Buffer entries ingest could not store (malformed, unknown monitor).",
            value=stats.dead_letters,
        )

    def _check_path(self) -> Iterator[Metric]:
        """Fleet-wide rates of the last complete minute (telemetry.stats)."""
        try:
            stats = stats_read(client=buffer_client(), now=dt.datetime.now(dt.UTC))
        except RedisError:
            return  # sentinel_redis_up already says so
        figures = (
            ("sentinel_checks_per_second", "Checks started per second.", stats.checks_per_second),
            (
                "sentinel_check_failures_per_second",
                "Failed checks per second.",
                stats.failures_per_second,
            ),
            (
                "sentinel_check_start_lag_seconds",
                "Mean delay from a check's scheduled slot to its start (dispatch lag).",
                stats.start_lag_seconds,
            ),
            (
                "sentinel_ingest_batch_size",
                "Results in the last batch ingest committed to MySQL.",
                stats.ingest_batch_size,
            ),
            (
                "sentinel_ingest_lag_seconds",
                "From the oldest check of ingest's last batch to its commit.",
                stats.ingest_lag_seconds,
            ),
        )
        for name, text, value in figures:
            yield GaugeMetricFamily(name, text, value=value)
        yield CounterMetricFamily(
            "sentinel_ingest_transactions",
            "MySQL transactions ingest committed (one per stored batch).",
            value=stats.ingest_transactions_total,
        )
        yield CounterMetricFamily(
            "sentinel_ingest_results",
            "Results ingest took from the buffer into those transactions.",
            value=stats.ingest_results_total,
        )

    def _notifications(self) -> Iterator[Metric]:
        try:
            by_status, resends = notification_counts()
        except DatabaseError:
            return  # sentinel_database_up already says so
        family = GaugeMetricFamily(
            "sentinel_notifications", "Notifications by delivery status.", labels=["status"]
        )
        for status in Notification.Status.values:
            family.add_metric([status], by_status.get(status, 0))
        yield family
        yield CounterMetricFamily(
            "sentinel_notification_resends_in_doubt",
            "Sends handed out again (same delivery id) because a worker died mid-send.",
            value=resends,
        )

    def _per_monitor(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "sentinel_monitor_up", "1 if the monitor is up, 0 if down.", labels=["monitor_id"]
        )
        latency = GaugeMetricFamily(
            "sentinel_monitor_latency_ms",
            "Duration of the monitor's last stored check.",
            labels=["monitor_id"],
        )
        monitors = Monitor.objects.filter(status__in=["up", "down"]).only(
            "pk", "status", "last_checked_at"
        )
        batch: list[Monitor] = []
        for monitor in monitors.iterator(chunk_size=PER_MONITOR_BATCH):
            up.add_metric([str(monitor.pk)], 1 if monitor.status == "up" else 0)
            batch.append(monitor)
            if len(batch) == PER_MONITOR_BATCH:
                _add_latencies(latency, batch)
                batch = []
        _add_latencies(latency, batch)
        yield up
        yield latency


# One point-lookup query per this many monitors (see queries.last_checks).
PER_MONITOR_BATCH = 1000


def _add_latencies(family: GaugeMetricFamily, monitors: list[Monitor]) -> None:
    for pk, (duration_ms, _) in queries.last_checks(monitors=monitors).items():
        family.add_metric([str(pk)], duration_ms)


def metrics_text() -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SentinelCollector())
    return generate_latest(registry)
