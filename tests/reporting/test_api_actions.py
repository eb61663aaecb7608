"""Monitor actions of the API (check now, bulk pause / resume / check now) through the
same services as the admin and the dashboard, tags, and throttling."""

from __future__ import annotations

import pytest
from django.db import IntegrityError

from monitors.models import Incident, Monitor
from reporting.api.errors import exception_handler
from tests.api_clients import token_client
from tests.factories import MonitorFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_cache(redis_client):
    """Throttle counters live in Redis, emptied per test."""


@pytest.fixture
def api(user):
    return token_client(user)


def published_ids(messages) -> list[int]:
    return sorted(pk for message in messages for pk, _ms in message.payload[0][0])


def test_check_now_queues_one_slot_after_commit(
    api, user, probes_queue, django_capture_on_commit_callbacks
):
    monitor = MonitorFactory(owner=user)

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/api/v1/monitors/{monitor.pk}/check-now/")

    assert response.status_code == 202 and response.json() == {"queued": 1}
    assert published_ids(probes_queue()) == [monitor.pk]


def test_check_now_of_a_paused_monitor_queues_nothing(api, user):
    monitor = MonitorFactory(owner=user, enabled=False)

    response = api.post(f"/api/v1/monitors/{monitor.pk}/check-now/")

    assert response.status_code == 202 and response.json() == {"queued": 0}


def test_bulk_pause_and_resume(api, user):
    running = MonitorFactory.create_batch(2, owner=user, status=Monitor.Status.DOWN)
    ids = [m.pk for m in running]
    Incident.objects.create(
        monitor=running[0], started_at=running[0].created_at, open_monitor_id=running[0].pk
    )

    paused = api.post("/api/v1/monitors/bulk/", {"action": "pause", "ids": ids}, format="json")
    again = api.post("/api/v1/monitors/bulk/", {"action": "pause", "ids": ids}, format="json")

    assert paused.status_code == 200, paused.content
    assert paused.json() == {"action": "pause", "ids": ids, "changed": 2}
    assert again.json()["changed"] == 0
    assert set(Monitor.objects.values_list("status", flat=True)) == {"paused"}
    # The same pause as everywhere: the open incident ends, as "paused".
    assert Incident.objects.get().end_reason == Incident.EndReason.PAUSED

    resumed = api.post("/api/v1/monitors/bulk/", {"action": "resume", "ids": ids}, format="json")

    assert resumed.json()["changed"] == 2
    assert set(Monitor.objects.values_list("status", flat=True)) == {"pending"}


def test_bulk_check_now_queues_the_enabled_ones(
    api, user, probes_queue, django_capture_on_commit_callbacks
):
    enabled = MonitorFactory.create_batch(3, owner=user)
    paused = MonitorFactory(owner=user, enabled=False)
    ids = [m.pk for m in enabled] + [paused.pk]

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            "/api/v1/monitors/bulk/", {"action": "check_now", "ids": ids}, format="json"
        )

    assert response.status_code == 200 and response.json()["changed"] == 3
    assert published_ids(probes_queue()) == sorted(m.pk for m in enabled)


def test_bulk_with_another_owners_monitor_does_nothing_and_names_ids(api, user, other_user):
    mine = MonitorFactory(owner=user)
    theirs = MonitorFactory(owner=other_user)

    response = api.post(
        "/api/v1/monitors/bulk/", {"action": "pause", "ids": [mine.pk, theirs.pk]}, format="json"
    )

    assert response.status_code == 400
    assert str(theirs.pk) in response.json()["ids"][0]
    assert Monitor.objects.filter(enabled=True).count() == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"action": "explode", "ids": [1]}, "action"),
        ({"action": "pause", "ids": []}, "ids"),
        ({"action": "pause", "ids": ["x"]}, "ids"),
        ({"action": "pause", "ids": list(range(1, 1002))}, "ids"),
        ({"action": "pause"}, "ids"),
    ],
)
def test_a_bad_bulk_request_is_a_400_naming_the_field(api, body, field):
    response = api.post("/api/v1/monitors/bulk/", body, format="json")

    assert response.status_code == 400
    assert field in response.json()


def test_check_now_of_another_owners_monitor_is_not_found(api, other_user):
    theirs = MonitorFactory(owner=other_user)

    assert api.post(f"/api/v1/monitors/{theirs.pk}/check-now/").status_code == 404


def test_tags_list_those_on_your_monitors_with_counts(api, user, other_user):
    first, second = MonitorFactory.create_batch(2, owner=user)
    theirs = MonitorFactory(owner=other_user)
    shop = first.tags.create(name="shop")
    second.tags.add(shop)
    theirs.tags.add(shop)
    secret = theirs.tags.create(name="secret-project")

    rows = api.get("/api/v1/tags/").json()["results"]
    named = api.get("/api/v1/tags/?name=shop").json()["results"]

    assert rows == [{"id": shop.pk, "name": "shop", "monitors": 2}]
    assert named == rows
    assert api.get(f"/api/v1/tags/{shop.pk}/").json() == rows[0]
    assert api.get(f"/api/v1/tags/{secret.pk}/").status_code == 404


def test_a_throttled_answer_says_when_to_retry(api, settings):
    settings.SENTINEL_API_RATE = "2/minute"

    codes = [api.get("/api/v1/channels/").status_code for _ in range(3)]
    throttled = api.get("/api/v1/incidents/")

    assert codes == [200, 200, 429]
    assert throttled.status_code == 429
    assert 0 < int(throttled["Retry-After"]) <= 60
    assert "throttled" in throttled.json()["detail"]


def test_each_token_has_its_own_budget(user, other_user, settings):
    settings.SENTINEL_API_RATE = "1/minute"
    first, second = token_client(user), token_client(other_user)

    assert first.get("/api/v1/tags/").status_code == 200
    assert first.get("/api/v1/tags/").status_code == 429
    assert second.get("/api/v1/tags/").status_code == 200


def test_checks_now_have_a_budget_of_their_own(api, user, settings):
    settings.SENTINEL_API_CHECK_NOW_RATE = "2/minute"
    monitor = MonitorFactory(owner=user)
    check_all = {"action": "check_now", "ids": [monitor.pk]}
    pause = {"action": "pause", "ids": [monitor.pk]}

    codes = [
        api.post(f"/api/v1/monitors/{monitor.pk}/check-now/").status_code,
        api.post("/api/v1/monitors/bulk/", check_all, format="json").status_code,
        api.post("/api/v1/monitors/bulk/", check_all, format="json").status_code,
        api.post(f"/api/v1/monitors/{monitor.pk}/check-now/").status_code,
    ]
    paused = api.post("/api/v1/monitors/bulk/", pause, format="json")

    assert codes == [202, 200, 429, 429]
    assert paused.status_code == 200  # pausing makes no checks
    assert api.get("/api/v1/monitors/").status_code == 200


def test_a_write_that_collides_with_another_is_a_409_not_a_500():
    response = exception_handler(IntegrityError(1062, "Duplicate entry"), {})

    assert response is not None and response.status_code == 409
    assert "Try again" in response.data["detail"]
