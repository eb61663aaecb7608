"""/metrics follows Prometheus' conventions: promtool finds nothing to say about the
real output of a database with checks, notifications, a dead letter and an outage,
and the counters there move by exactly what happened."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess

import pytest
from django.test import Client

from alerting import services
from core.reachability import outage_count
from monitors.models import Monitor
from telemetry.buffer import buffer_push
from telemetry.ingest import ingest_batch
from telemetry.ingest import store as ingest_store
from telemetry.records import CheckResult, FailureKind
from tests.factories import MonitorFactory, NotificationChannelFactory, WebhookChannelFactory

pytestmark = pytest.mark.django_db

PROMTOOL = shutil.which("promtool")
TOKEN = "scrape-token"


@pytest.fixture
def scrape(client: Client, settings, redis_client, tmp_path):
    """GET /metrics as Prometheus does (bearer token), per-monitor gauges on; the
    tests' Redis database is emptied first."""
    settings.SENTINEL_METRICS_TOKEN = TOKEN
    settings.SENTINEL_METRICS_PER_MONITOR = True
    settings.TELEMETRY_SPOOL_DIR = str(tmp_path / "spool")
    ingest_store._known_monitors.clear()

    def get() -> str:
        response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
        assert response.status_code == 200
        return response.content.decode()

    return get


@pytest.fixture
def activity(scrape) -> dict[str, Monitor]:
    """Three monitors, one of each kind, with checks pushed and stored (one of them
    for a monitor that no longer exists: a dead letter), two notifications (one sent,
    one failed) and a MySQL outage."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(seconds=10)
    monitors: dict[str, Monitor] = {
        "http": MonitorFactory(kind="http", status=Monitor.Status.UP, last_checked_at=now),
        "tcp": MonitorFactory(
            kind="tcp", url="tcp://127.0.0.1:9", status=Monitor.Status.DOWN, last_checked_at=now
        ),
        "tls": MonitorFactory(
            kind="tls", url="tls://127.0.0.1:9", status=Monitor.Status.UP, last_checked_at=now
        ),
    }

    def result(monitor_id: int, duration_ms: int, failure: FailureKind | None) -> CheckResult:
        return CheckResult(
            monitor_id=monitor_id,
            scheduled_at=now,
            started_at=now + dt.timedelta(milliseconds=40),
            duration_ms=duration_ms,
            ok=failure is None,
            failure=failure,
        )

    buffer_push(
        results=[
            result(monitors["http"].pk, 120, None),
            result(monitors["tcp"].pk, 3, FailureKind.REFUSED),
            result(monitors["tls"].pk, 45, None),
            result(2**40, 10, None),  # no such monitor: ingest dead-letters it
        ],
        kinds={m.pk: kind for kind, m in monitors.items()},
    )
    outcome = ingest_batch(consumer="metrics-test")
    assert (outcome.stored, outcome.dead_letters) == (3, 1)
    assert services.channel_send_test(channel=NotificationChannelFactory()).status == "sent"
    refused = WebhookChannelFactory()  # 127.0.0.1:9: nothing listens there
    assert services.channel_send_test(channel=refused).status == "failed"
    outage_count("database")
    return monitors


@pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is not installed: it comes in Debian's prometheus package, which "
    "bin/ensure-system-packages installs ('make venv')",
)
def test_promtool_finds_nothing_to_say_about_the_metrics(scrape, activity):
    body = scrape()

    assert PROMTOOL is not None
    checked = subprocess.run(
        [PROMTOOL, "check", "metrics"],
        input=body,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert (checked.returncode, checked.stdout + checked.stderr) == (0, "")


def test_the_counters_say_what_happened(scrape, activity):
    body = scrape()

    http, tcp, tls = (activity[kind].pk for kind in ("http", "tcp", "tls"))
    for line in (
        'sentinel_checks_total{kind="http",outcome="ok"} 1.0',
        'sentinel_checks_total{kind="tcp",outcome="refused"} 1.0',
        'sentinel_checks_total{kind="tcp",outcome="ok"} 0.0',
        'sentinel_checks_total{kind="tls",outcome="ok"} 1.0',
        'sentinel_checks_total{kind="unknown",outcome="ok"} 1.0',
        'sentinel_check_duration_seconds_bucket{kind="http",le="0.1"} 0.0',
        'sentinel_check_duration_seconds_bucket{kind="http",le="0.15"} 1.0',
        'sentinel_check_duration_seconds_bucket{kind="tcp",le="0.01"} 1.0',
        'sentinel_check_duration_seconds_count{kind="tls"} 1.0',
        'sentinel_check_duration_seconds_sum{kind="http"} 0.12',
        'sentinel_check_schedule_lag_seconds_bucket{le="0.025"} 0.0',
        'sentinel_check_schedule_lag_seconds_bucket{le="0.05"} 4.0',
        'sentinel_check_schedule_lag_seconds_bucket{le="+Inf"} 4.0',
        "sentinel_check_schedule_lag_seconds_sum 0.16",
        "sentinel_ingest_transactions_total 1.0",
        "sentinel_ingest_results_total 4.0",
        "sentinel_ingest_stored_results_total 3.0",
        "sentinel_ingest_duplicate_results_total 0.0",
        "sentinel_buffer_dead_letters_total 1.0",
        'sentinel_notification_attempts_total{outcome="sent"} 1.0',
        'sentinel_notification_attempts_total{outcome="failed"} 1.0',
        'sentinel_notification_attempts_total{outcome="retrying"} 0.0',
        'sentinel_service_outages_total{service="database"} 1.0',
        'sentinel_service_outages_total{service="redis"} 0.0',
        f'sentinel_monitor_up{{monitor_id="{tcp}"}} 0.0',
        f'sentinel_monitor_latency_seconds{{monitor_id="{http}"}} 0.12',
        f'sentinel_monitor_latency_seconds{{monitor_id="{tls}"}} 0.045',
    ):
        assert f"\n{line}\n" in body, line


def test_counters_are_counters_and_no_rate_is_computed_here(scrape, activity):
    body = scrape()

    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", body, flags=re.MULTILINE))
    assert {name for name, kind in types.items() if kind == "counter"} == {
        "sentinel_buffer_dead_letters_total",
        "sentinel_checks_total",
        "sentinel_ingest_duplicate_results_total",
        "sentinel_ingest_results_total",
        "sentinel_ingest_stored_results_total",
        "sentinel_ingest_transactions_total",
        "sentinel_notification_attempts_total",
        "sentinel_notification_resends_in_doubt_total",
        "sentinel_service_outages_total",
    }
    assert {name for name, kind in types.items() if kind == "histogram"} == {
        "sentinel_check_duration_seconds",
        "sentinel_check_schedule_lag_seconds",
    }
    for gone in (
        "sentinel_checks_per_second",
        "sentinel_check_failures_per_second",
        "sentinel_check_start_lag_seconds",
        "sentinel_monitor_latency_ms",
    ):
        assert gone not in body


def test_counters_only_grow_from_scrape_to_scrape(scrape, activity):
    def samples(body: str) -> dict[str, float]:
        lines = (line.rsplit(" ", 1) for line in body.splitlines() if line[:1] != "#")
        return {name: float(value) for name, value in lines if "_total" in name}

    before = samples(scrape())
    buffer_push(
        results=[
            CheckResult(
                monitor_id=activity["http"].pk,
                scheduled_at=dt.datetime.now(dt.UTC),
                started_at=dt.datetime.now(dt.UTC),
                duration_ms=5,
                ok=False,
                failure=FailureKind.TIMEOUT,
            )
        ],
        kinds={activity["http"].pk: "http"},
    )
    after = samples(scrape())

    assert after.keys() == before.keys()
    moved = {name: after[name] - before[name] for name in after if after[name] != before[name]}
    assert moved == {'sentinel_checks_total{kind="http",outcome="timeout"}': 1.0}
