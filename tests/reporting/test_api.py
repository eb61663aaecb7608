"""The REST API: CRUD through the shared services, ownership, bad input, pagination,
stats and series caching, and the OpenAPI schema."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import time_machine
from django.core.cache import cache
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from monitors.models import Monitor
from reporting import queries
from tests.factories import MonitorFactory
from tests.reporting.rows import make_results, store_results

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_cache(redis_client):
    """Throttle counters and cached answers live in Redis db 15, emptied per test."""


@pytest.fixture
def api(user):
    client = APIClient()
    token = Token.objects.create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def valid_body(**changes):
    body = {
        "name": "Shop",
        "kind": "http",
        "url": "https://shop.example.test/health",
        "interval_seconds": 60,
        "timeout_seconds": 10,
        "tags": ["shop", "prod"],
    }
    return {**body, **changes}


def test_it_refuses_requests_without_credentials(db):
    assert APIClient().get("/api/v1/monitors/").status_code == 401


def test_it_creates_a_monitor_through_the_service_with_tags(api, user):
    response = api.post("/api/v1/monitors/", valid_body(), format="json")

    assert response.status_code == 201, response.content
    monitor = Monitor.objects.get(pk=response.json()["id"])
    assert monitor.owner == user and monitor.status == "pending"
    assert sorted(t.name for t in monitor.tags.all()) == ["prod", "shop"]
    assert response.json()["tags"] == ["prod", "shop"]


def test_it_lists_only_the_users_monitors_with_filters(api, user, other_user):
    down = MonitorFactory(owner=user, status=Monitor.Status.DOWN, kind="http")
    up = MonitorFactory(owner=user, status=Monitor.Status.UP)
    MonitorFactory(owner=other_user, status=Monitor.Status.DOWN)
    tagged = api.post("/api/v1/monitors/", valid_body(tags=["edge"]), format="json").json()

    everything = api.get("/api/v1/monitors/").json()
    assert {m["id"] for m in everything["results"]} == {down.pk, up.pk, tagged["id"]}
    by_status = api.get("/api/v1/monitors/?status=down").json()["results"]
    assert [m["id"] for m in by_status] == [down.pk]
    by_tag = api.get("/api/v1/monitors/?tag=edge").json()["results"]
    assert [m["id"] for m in by_tag] == [tagged["id"]]
    assert api.get("/api/v1/monitors/?kind=tcp").json()["results"] == []
    assert api.get("/api/v1/monitors/?status=sideways").status_code == 400


def test_it_patches_and_pauses_a_monitor(api, user):
    monitor = MonitorFactory(owner=user, status=Monitor.Status.UP)

    response = api.patch(
        f"/api/v1/monitors/{monitor.pk}/",
        {"interval_seconds": 120, "enabled": False},
        format="json",
    )

    assert response.status_code == 200, response.content
    monitor.refresh_from_db()
    assert (monitor.interval_seconds, monitor.enabled, monitor.status) == (120, False, "paused")
    assert response.json()["status"] == "paused"


def test_it_deletes_a_monitor(api, user):
    monitor = MonitorFactory(owner=user)

    assert api.delete(f"/api/v1/monitors/{monitor.pk}/").status_code == 204
    assert not Monitor.objects.filter(pk=monitor.pk).exists()


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("get", ""),
        ("patch", ""),
        ("delete", ""),
        ("get", "results/"),
        ("get", "stats/?window=24h"),
        ("get", "series/?bucket=1h"),
    ],
)
def test_another_users_monitor_is_not_found_on_every_endpoint(api, other_user, method, suffix):
    foreign = MonitorFactory(owner=other_user, name="Secret")

    response = getattr(api, method)(f"/api/v1/monitors/{foreign.pk}/{suffix}", {}, format="json")

    assert response.status_code == 404
    assert b"Secret" not in response.content
    assert Monitor.objects.filter(pk=foreign.pk, name="Secret").exists()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"url": "ftp://files.example.test/"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"interval_seconds": 5}, "interval_seconds"),
        ({"interval_seconds": 999999}, "interval_seconds"),
        ({"timeout_seconds": 60, "interval_seconds": 60}, "timeout_seconds"),
        ({"headers": {f"X-H{i}": "v" for i in range(30)}}, "headers"),
        ({"headers": {"X-Big": "v" * 5000}}, "headers"),
        ({"headers": {"Host": "evil.example.test"}}, "headers"),
        ({"kind": "dns", "url": "https://example.test/"}, "url"),
        ({"kind": "dns", "url": "dns://example.test", "dns_expected": ["mail"]}, "dns_match"),
        ({"json_assertions": [{"path": "a.", "op": "=="}]}, "json_assertions"),
        ({"tags": ["not a slug!"]}, "tags"),
    ],
)
def test_bad_monitor_input_is_a_400_naming_the_field_and_saves_nothing(api, changes, field):
    response = api.post("/api/v1/monitors/", valid_body(**changes), format="json")

    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not Monitor.objects.exists()


def test_a_bad_patch_leaves_the_stored_monitor_untouched(api, user):
    monitor = MonitorFactory(owner=user, url="https://ok.example.test/")

    response = api.patch(
        f"/api/v1/monitors/{monitor.pk}/", {"url": "gopher://x.example.test/"}, format="json"
    )

    assert response.status_code == 400 and "url" in response.json()
    monitor.refresh_from_db()
    assert monitor.url == "https://ok.example.test/"


def test_malformed_json_is_a_400(api):
    response = api.generic(
        "POST", "/api/v1/monitors/", '{"name": "x", ', content_type="application/json"
    )

    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]


def test_an_oversized_request_body_is_a_400(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    body = json.dumps(valid_body(body="x" * 5000))

    response = api.generic("POST", "/api/v1/monitors/", body, content_type="application/json")

    assert response.status_code in (400, 413)
    assert not Monitor.objects.exists()


def test_monitor_pages_are_bounded(api, user):
    MonitorFactory.create_batch(5, owner=user)

    first = api.get("/api/v1/monitors/?page_size=2").json()
    huge = api.get("/api/v1/monitors/?page_size=100000")

    assert len(first["results"]) == 2 and first["count"] == 5 and first["next"]
    assert huge.status_code == 200 and len(huge.json()["results"]) == 5
    assert api.get("/api/v1/monitors/?page=99").status_code == 404


def test_the_token_is_throttled(api, settings):
    settings.SENTINEL_API_RATE = "3/minute"

    codes = [api.get("/api/v1/monitors/").status_code for _ in range(4)]

    assert codes == [200, 200, 200, 429]


@pytest.fixture
def checked(user, now):
    monitor = MonitorFactory(owner=user)
    results = make_results(
        monitor_id=monitor.pk,
        end=now + dt.timedelta(seconds=1),
        span=dt.timedelta(days=2),
        every=dt.timedelta(minutes=5),
        seed=3,
    )
    store_results(results)
    monitor.last_checked_at = results[-1].scheduled_at
    monitor.save(update_fields=["last_checked_at"])
    return monitor, results


def test_results_are_cursor_paginated_newest_first(api, checked):
    monitor, results = checked
    newest = sorted(results, key=lambda r: r.scheduled_at, reverse=True)

    first = api.get(f"/api/v1/monitors/{monitor.pk}/results/?page_size=3").json()
    second = api.get(first["next"]).json()

    times = [r["scheduled_at"] for r in first["results"] + second["results"]]
    expected = [r.scheduled_at for r in newest[:6]]
    assert [dt.datetime.fromisoformat(t.replace("Z", "+00:00")) for t in times] == expected
    assert {"ok", "duration_ms", "failure", "error", "status_code"} <= first["results"][0].keys()


@pytest.mark.parametrize(
    "query", ["page_size=0", "page_size=501", "page_size=x", "cursor=%25%25%25", "cursor=bm9wZQ=="]
)
def test_bad_results_parameters_are_a_400(api, checked, query):
    monitor, _ = checked

    response = api.get(f"/api/v1/monitors/{monitor.pk}/results/?{query}")

    assert response.status_code == 400
    assert set(response.json()) <= {"page_size", "cursor"}


def test_stats_answer_the_rollup_figures(api, checked, now):
    monitor, _ = checked

    data = api.get(f"/api/v1/monitors/{monitor.pk}/stats/?window=24h").json()

    expected = queries.window_summary(
        monitor_id=monitor.pk, since=dt.datetime.fromisoformat(data["since"]), until=now
    )
    assert data["window"] == "24h"
    assert data["checks"] == expected.checks and data["failures"] == expected.failures
    assert data["uptime_percent"] == pytest.approx(expected.uptime_percent)
    assert data["p95_ms"] == expected.p95_ms


@pytest.mark.parametrize("window", ["24h", "7d", "30d"])
def test_stats_count_exactly_the_window_ending_now(api, edges, at_17, window):
    monitor, results = edges
    since = at_17 - queries.WINDOWS[window]
    rows = [r for r in results if since < r.scheduled_at <= at_17]

    with time_machine.travel(at_17, tick=False):
        data = api.get(f"/api/v1/monitors/{monitor.pk}/stats/?window={window}").json()

    assert dt.datetime.fromisoformat(data["since"]) == since
    assert dt.datetime.fromisoformat(data["until"]) == at_17
    # Not 25 hours for "24h", nor 8 days for "7d".
    assert (data["checks"], data["failures"]) == (len(rows), sum(not r.ok for r in rows))
    expected = queries.window_summary(monitor_id=monitor.pk, since=since, until=at_17)
    assert data["uptime_percent"] == pytest.approx(expected.uptime_percent)
    assert (data["p95_ms"], data["min_ms"], data["max_ms"]) == (
        expected.p95_ms,
        min(r.duration_ms for r in rows if r.ok),
        max(r.duration_ms for r in rows if r.ok),
    )


def test_stats_are_cached_until_the_next_check(api, checked, now):
    monitor, _ = checked
    url = f"/api/v1/monitors/{monitor.pk}/stats/?window=24h"
    before = api.get(url).json()["checks"]
    newer = now + dt.timedelta(seconds=20)
    store_results(
        make_results(
            monitor_id=monitor.pk,
            end=newer,
            span=dt.timedelta(seconds=10),
            every=dt.timedelta(seconds=10),
        )
    )

    assert api.get(url).json()["checks"] == before  # cached: same last check
    Monitor.objects.filter(pk=monitor.pk).update(last_checked_at=newer - dt.timedelta(seconds=10))
    assert api.get(url).json()["checks"] == before + 1  # a new check is a new key


def test_stats_cache_lives_no_longer_than_the_interval(api, checked, settings):
    monitor, _ = checked
    settings.SENTINEL_REPORT_CACHE_SECONDS = 600
    api.get(f"/api/v1/monitors/{monitor.pk}/stats/?window=7d")

    keys = cache.keys("report:stats:*")  # type: ignore[attr-defined]
    assert len(keys) == 1
    assert 0 < cache.ttl(keys[0]) <= monitor.interval_seconds  # type: ignore[attr-defined]


@pytest.mark.parametrize("bucket", ["5m", "1h", "1d"])
def test_series_answers_points_per_bucket(api, checked, bucket, now):
    monitor, _ = checked
    since = (now - dt.timedelta(hours=12)).isoformat()

    response = api.get(f"/api/v1/monitors/{monitor.pk}/series/", {"bucket": bucket, "since": since})

    assert response.status_code == 200, response.content
    points = response.json()["points"]
    expected = queries.latency_series(
        monitor_id=monitor.pk,
        bucket=bucket,
        since=dt.datetime.fromisoformat(since),
        until=dt.datetime.fromisoformat(response.json()["until"].replace("Z", "+00:00")),
    )
    assert len(points) == len(expected) > 0
    assert points[-1]["p95_ms"] == expected[-1].p95_ms
    assert {"avg_ms", "p50_ms", "p95_ms", "p99_ms", "min_ms", "max_ms"} <= points[0].keys()


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("stats/?window=2w", "window"),
        ("series/?bucket=10m", "bucket"),
        ("series/?since=yesterday", "since"),
        ("series/?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", "since"),
        ("series/?bucket=5m&since=2026-01-01T00:00:00Z&until=2026-03-01T00:00:00Z", "since"),
        ("series/?until=not-a-date", "until"),
    ],
)
def test_bad_report_parameters_are_a_400_naming_the_field(api, checked, path, field):
    monitor, _ = checked

    response = api.get(f"/api/v1/monitors/{monitor.pk}/{path}")

    assert response.status_code == 400, response.content
    assert field in response.json()


def test_the_openapi_schema_validates_and_documents_the_endpoints(tmp_path):
    out = tmp_path / "schema.yaml"

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))

    schema = out.read_text()
    for path in ("/api/v1/monitors/{id}/series/", "/api/v1/monitors/{id}/stats/", "window"):
        assert path in schema


def test_the_docs_page_loads_its_assets_from_this_server(client, user):
    client.force_login(user)

    page = client.get("/api/v1/docs/").content.decode()

    assert "swagger-ui" in page
    assert "cdn" not in page.lower() and "unpkg" not in page.lower()
    assert "/static/drf_spectacular_sidecar/" in page


def test_stats_still_answer_when_the_cache_is_down(api, checked, settings):
    # Port 1 on loopback: nothing listens, so every cache call fails at once.
    cache_settings = {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0"}
    settings.CACHES = {"default": cache_settings}
    monitor, _ = checked

    response = api.get(f"/api/v1/monitors/{monitor.pk}/stats/?window=24h")

    assert response.status_code == 200
    assert response.json()["checks"] > 0
