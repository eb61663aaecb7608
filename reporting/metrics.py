"""``/metrics`` in Prometheus text format, read cheaply on each scrape.

Following Prometheus' conventions: what only grows is a counter (``_total``) kept in
Redis by the processes that count it (``telemetry.stats``, ``core.counters``), never
reset by the app, so it is monotonic across scrapes, processes and restarts, and
rates are PromQL's job (``rate(sentinel_checks_total[5m])``); durations are
histograms in seconds; gauges are the things that go up and down (monitors by status,
the buffer's depth and age, the rollups' lag, whether a service answered), read at
scrape time. A registry of our own keeps nothing in this process between scrapes, so
several gunicorn workers answer alike. A service that is down is reported as a gauge
(``sentinel_database_up``, ``sentinel_redis_up``), not a 500, and the figures it
holds are left out rather than reported as zero.

Every metric, and what was renamed or removed, is listed in docs/deploying.md.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.conf import settings
from django.db import DatabaseError
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from redis.exceptions import RedisError

from alerting.models import Notification
from alerting.selectors import notification_counts
from alerting.services import ATTEMPT_OUTCOMES, ATTEMPTS_KEY, RESENDS_KEY
from core.counters import counters_read
from core.reachability import OUTAGES_KEY, SERVICE_NAMES
from monitors.models import Monitor
from monitors.regions import regions_status
from reporting import queries
from telemetry.buffer import buffer_client, buffer_stats
from telemetry.records import FailureKind
from telemetry.rollups import rollups_pending
from telemetry.stats import OK, CheckPathStats, Histogram, stats_read

# Label values exported at 0 before anything is counted, so that a first failure is
# an increase PromQL sees rather than a new series.
CHECK_KINDS: tuple[str, ...] = tuple(kind.value for kind in Monitor.SUPPORTED_KINDS)
CHECK_OUTCOMES: tuple[str, ...] = (OK, *(kind.value for kind in FailureKind))


class SentinelCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        """Every metric, read now (a service that does not answer is skipped)."""
        yield from self._monitors()
        yield from self._buffer()
        yield from self._check_path()
        yield from self._notifications()
        yield from self._counters()
        yield from self._regions()
        if settings.SENTINEL_METRICS_PER_MONITOR:
            yield from self._per_monitor()

    def _monitors(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("sentinel_database_up", "1 if MySQL answered this scrape.")
        by_status = GaugeMetricFamily(
            "sentinel_monitors", "Monitors by live status.", labels=["status"]
        )
        try:
            counts = queries.status_counts(project_ids=None)
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
        yield CounterMetricFamily(
            "sentinel_buffer_dead_letters",
            "Results ingest set aside as dead letters instead of storing them (malformed, "
            "unknown monitor, refused by MySQL).",
            value=stats.dead_letters,
        )

    def _regions(self) -> Iterator[Metric]:
        """Each probe region's workers as the central site sees them (a field no
        service answered for is left out)."""
        families = {
            "seen": GaugeMetricFamily(
                "sentinel_region_last_seen_seconds",
                "Seconds since a region's results last reached the buffer.",
                labels=["region"],
            ),
            "lag": GaugeMetricFamily(
                "sentinel_region_lag_seconds",
                "How late a region's newest checks started after their slots.",
                labels=["region"],
            ),
            "queued": GaugeMetricFamily(
                "sentinel_region_queue_depth",
                "Probe batches waiting on a region's queue.",
                labels=["region"],
            ),
            "workers": GaugeMetricFamily(
                "sentinel_region_workers",
                "Consumers of a region's queue (its probe worker processes' channels).",
                labels=["region"],
            ),
            "silent": GaugeMetricFamily(
                "sentinel_region_silent",
                "1 when a region has no worker or sent no result for "
                "SENTINEL_REGION_SILENT_SECONDS.",
                labels=["region"],
            ),
        }
        for region in regions_status():
            values = {
                "seen": region.seen_seconds_ago,
                "lag": None if region.lag_ms is None else region.lag_ms / 1000,
                "queued": region.queued,
                "workers": region.workers,
                "silent": int(region.silent),
            }
            for key, value in values.items():
                if value is not None:
                    families[key].add_metric([region.name], value)
        yield from families.values()

    def _check_path(self) -> Iterator[Metric]:
        """Counters and histograms of the probe workers and ingest (telemetry.stats)."""
        try:
            stats = stats_read(client=buffer_client())
        except RedisError:
            return  # sentinel_redis_up already says so
        yield _checks(stats)
        durations = HistogramMetricFamily(
            "sentinel_check_duration_seconds",
            "Duration of checks, failed ones included (a timeout lasts its timeout).",
            labels=["kind"],
        )
        for kind in sorted({*CHECK_KINDS, *stats.duration_kinds()}):
            _add_histogram(durations, [kind], stats.duration(kind))
        yield durations
        lag = HistogramMetricFamily(
            "sentinel_check_schedule_lag_seconds",
            "From a check's scheduled slot to its start (dispatch and probe worker lag).",
        )
        _add_histogram(lag, [], stats.schedule_lag())
        yield lag
        yield from _ingest(stats)

    def _counters(self) -> Iterator[Metric]:
        """Notification attempts and service outages (core.counters)."""
        try:
            attempts, outages, resends = counters_read(
                client=buffer_client(), keys=[ATTEMPTS_KEY, OUTAGES_KEY, RESENDS_KEY]
            )
        except RedisError:
            return  # sentinel_redis_up already says so
        family = CounterMetricFamily(
            "sentinel_notification_attempts",
            "Notification send attempts, by what they led to: sent, retrying (failed, "
            "tried again later), failed (for good).",
            labels=["outcome"],
        )
        for outcome in sorted({*ATTEMPT_OUTCOMES, *attempts}):
            family.add_metric([outcome], attempts.get(outcome, 0))
        yield family
        family = CounterMetricFamily(
            "sentinel_service_outages",
            "Times a process logged that a service was unreachable (an outage met while "
            "Redis is away is not counted: the count lives in Redis).",
            labels=["service"],
        )
        for service in sorted({*SERVICE_NAMES, *outages}):
            family.add_metric([service], outages.get(service, 0))
        yield family
        yield CounterMetricFamily(
            "sentinel_notification_resends_in_doubt",
            "Sends handed out again (same delivery id) because a worker died mid-send.",
            value=resends.get("in_doubt", 0),
        )

    def _notifications(self) -> Iterator[Metric]:
        try:
            by_status = notification_counts()
        except DatabaseError:
            return  # sentinel_database_up already says so
        family = GaugeMetricFamily(
            "sentinel_notifications", "Notifications by delivery status.", labels=["status"]
        )
        for status in Notification.Status.values:
            family.add_metric([status], by_status.get(status, 0))
        yield family

    def _per_monitor(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "sentinel_monitor_up", "1 if the monitor is up, 0 if down.", labels=["monitor_id"]
        )
        latency = GaugeMetricFamily(
            "sentinel_monitor_latency_seconds",
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
        family.add_metric([str(pk)], duration_ms / 1000)


def _checks(stats: CheckPathStats) -> CounterMetricFamily:
    family = CounterMetricFamily(
        "sentinel_checks",
        "Checks made, by monitor kind and outcome (ok, or the failure kind).",
        labels=["kind", "outcome"],
    )
    counted = stats.checks()
    for kind, outcome in sorted({*((k, o) for k in CHECK_KINDS for o in CHECK_OUTCOMES), *counted}):
        family.add_metric([kind, outcome], counted.get((kind, outcome), 0))
    return family


def _add_histogram(family: HistogramMetricFamily, labels: list[str], histogram: Histogram) -> None:
    buckets = [(floatToGoString(bound), count) for bound, count in histogram.buckets]
    family.add_metric(labels, buckets, histogram.sum_seconds)


def _ingest(stats: CheckPathStats) -> Iterator[Metric]:
    yield GaugeMetricFamily(
        "sentinel_ingest_batch_size",
        "Results in the last batch ingest committed to MySQL.",
        value=stats.ingest_batch_size,
    )
    yield GaugeMetricFamily(
        "sentinel_ingest_lag_seconds",
        "From the oldest check of ingest's last batch to its commit.",
        value=stats.ingest_lag_seconds,
    )
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
    yield CounterMetricFamily(
        "sentinel_ingest_stored_results",
        "Results ingest inserted into check_result.",
        value=stats.ingest_stored_total,
    )
    yield CounterMetricFamily(
        "sentinel_ingest_duplicate_results",
        "Results ingest found stored already (a batch pushed or taken twice), not stored again.",
        value=stats.ingest_duplicates_total,
    )


def metrics_text() -> bytes:
    """The whole ``/metrics`` body, in Prometheus' text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SentinelCollector())
    return generate_latest(registry)
