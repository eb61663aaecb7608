"""What people see of probe regions: the API and form take a monitor's regions, the
monitor page and the API show each region's newest check, /healthz and /metrics each
region's workers."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from monitors.models import Incident, Monitor
from tests.alerting.conftest import check
from tests.factories import MonitorFactory
from tests.telemetry.conftest import store

pytestmark = pytest.mark.usefixtures("telemetry_tables", "redis_client")


@pytest.fixture(autouse=True)
def three_regions(settings):
    settings.SENTINEL_REGIONS = ["local", "eu", "us"]


@pytest.fixture
def api(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def body(**changes):
    return {
        "name": "Shop",
        "kind": "http",
        "url": "https://shop.example.test/health",
        "interval_seconds": 60,
        "timeout_seconds": 10,
        **changes,
    }


def test_it_creates_a_monitor_with_regions_through_the_api(api):
    response = api.post("/api/v1/monitors/", body(regions=["eu", "us"]), format="json")

    assert response.status_code == 201, response.json()
    assert Monitor.objects.get(pk=response.json()["id"]).regions == ["eu", "us"]


def test_it_refuses_an_unknown_region_and_a_quorum_over_the_regions_naming_the_field(api):
    unknown = api.post("/api/v1/monitors/", body(regions=["mars"]), format="json")
    quorum = api.post("/api/v1/monitors/", body(regions=["eu"], regions_confirm=2), format="json")

    assert unknown.status_code == 400 and "regions" in unknown.json()
    assert quorum.status_code == 400 and "regions_confirm" in quorum.json()
    assert not Monitor.objects.exists()


def test_the_dashboard_form_takes_regions_comma_separated(client, user):
    client.force_login(user)
    monitor = MonitorFactory(owner=user)
    form = {
        "name": monitor.name,
        "kind": "http",
        "url": monitor.url,
        "method": "GET",
        "headers": "{}",
        "max_body_kib": 1024,
        "tags": "",
        "interval_seconds": 60,
        "timeout_seconds": 10,
        "expected_status_codes": "200-299",
        "keyword_mode": "present",
        "confirm_failures": 2,
        "recover_successes": 1,
        "regions": "eu, us",
        "regions_confirm": "2",
    }

    response = client.post(f"/dashboard/monitors/{monitor.pk}/edit/", form)

    monitor.refresh_from_db()
    assert response.status_code == 302, response.content.decode()[:2000]
    assert monitor.regions == ["eu", "us"] and monitor.regions_confirm == 2


def test_the_page_and_the_api_show_each_regions_newest_check(api, client, user):
    monitor = MonitorFactory(owner=user)
    at = timezone.now().replace(microsecond=0) - dt.timedelta(minutes=1)
    base = check(monitor, 0, True)
    store(
        [
            dataclasses.replace(base, scheduled_at=at, started_at=at, region="eu", duration_ms=41),
            dataclasses.replace(
                check(monitor, 0, False), scheduled_at=at, started_at=at, region="us"
            ),
        ]
    )

    Incident.objects.create(monitor=monitor, started_at=at, regions="eu,us", checks_failed=2)

    rows = api.get(f"/api/v1/monitors/{monitor.pk}/regions/").json()
    client.force_login(user)
    page = client.get(f"/dashboard/monitors/{monitor.pk}/").content.decode()

    assert [(r["region"], r["ok"], r["duration_ms"]) for r in rows] == [
        ("eu", True, 41),
        ("us", False, 20),
    ]
    assert '<h2 style="margin-top:0">Regions</h2>' in page and "HTTP 503" in page
    assert "(failed from eu, us)" in page


def test_another_users_monitor_regions_are_not_found(api, other_user):
    monitor = MonitorFactory(owner=other_user)

    assert api.get(f"/api/v1/monitors/{monitor.pk}/regions/").status_code == 404


def test_healthz_and_metrics_show_each_regions_workers(client, settings):
    settings.SENTINEL_METRICS_TOKEN = "scrape-token"

    health = client.get("/healthz").json()
    metrics = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token").content.decode()

    assert set(health["regions"]) == {"local", "eu", "us"}
    assert health["regions"]["eu"]["silent"] is True
    assert 'sentinel_region_silent{region="eu"} 1.0' in metrics


def test_results_pages_never_split_a_slots_regions_away(api, user):
    monitor = MonitorFactory(owner=user)
    first = timezone.now().replace(microsecond=0) - dt.timedelta(minutes=10)
    store(
        [
            dataclasses.replace(
                check(monitor, 0, True),
                scheduled_at=first + dt.timedelta(minutes=minute),
                started_at=first + dt.timedelta(minutes=minute),
                region=region,
            )
            for minute in range(3)
            for region in ("local", "eu", "us")
        ]
    )

    seen, url = [], f"/api/v1/monitors/{monitor.pk}/results/?page_size=2"
    while url:
        page = api.get(url).json()
        seen += [(row["scheduled_at"], row["region"]) for row in page["results"]]
        url = page["next"]

    assert len(seen) == len(set(seen)) == 9
    assert seen[:3] == [(seen[0][0], "us"), (seen[0][0], "local"), (seen[0][0], "eu")]
