"""``/metrics`` in Prometheus text format, read cheaply on each scrape.

Gauges are computed at scrape time from what is already counted elsewhere (monitor
status counts by index, the Redis buffer's length), in a registry of our own so that
nothing is kept in this process between scrapes and several gunicorn workers answer
alike. A service that is down is reported as a gauge (``sentinel_up``), not a 500.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.conf import settings
from django.db import DatabaseError
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

from monitors.models import Monitor
from reporting import queries
from telemetry.buffer import buffer_stats


class SentinelCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        yield from self._monitors()
        yield from self._buffer()
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

    def _per_monitor(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily(
            "sentinel_monitor_up", "1 if the monitor is up, 0 if down.", labels=["monitor_id"]
        )
        rows = Monitor.objects.filter(status__in=["up", "down"]).values_list("pk", "status")
        for pk, status in rows.iterator(chunk_size=2000):
            gauge.add_metric([str(pk)], 1 if status == "up" else 0)
        yield gauge


def metrics_text() -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SentinelCollector())
    return generate_latest(registry)
