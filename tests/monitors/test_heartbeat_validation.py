"""A heartbeat's configuration is refused with the field named, the same way by the
API, the dashboard form and the admin (the model's validation)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from monitors.models import Monitor
from monitors.services import monitor_create


@pytest.fixture
def api(user, redis_client):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def heartbeat(**changes):
    return {"name": "backup", "kind": "heartbeat", **changes}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"heartbeat_cron": "0 0 30 2 *"}, "heartbeat_cron"),  # 30 February: never fires
        ({"heartbeat_cron": "61 * * * *"}, "heartbeat_cron"),
        ({"heartbeat_grace_seconds": 0}, "heartbeat_grace_seconds"),
        ({"heartbeat_period_seconds": 10}, "heartbeat_period_seconds"),
        ({"heartbeat_cron": "0 3 * * *", "heartbeat_tz": "Mars/Olympus"}, "heartbeat_tz"),
        ({"url": "https://example.test/"}, "url"),
        ({"interval_seconds": 30}, "interval_seconds"),
        ({"heartbeat_slug": "not a slug"}, "heartbeat_slug"),
    ],
)
def test_it_refuses_a_bad_heartbeat_naming_the_field(api, changes, field):
    response = api.post("/api/v1/monitors/", heartbeat(**changes), format="json")
    assert response.status_code == 400
    assert field in response.json(), response.json()
    assert not Monitor.objects.exists()


def test_it_refuses_heartbeat_settings_on_another_kind(user):
    with pytest.raises(ValidationError) as refused:
        monitor_create(
            owner=user,
            name="x",
            kind="http",
            url="https://example.test/",
            heartbeat_cron="* * * * *",
        )
    assert "heartbeat_cron" in refused.value.message_dict


def test_it_refuses_a_slug_the_owner_uses_already(api, user):
    monitor_create(owner=user, name="one", kind="heartbeat", heartbeat_slug="backup")
    response = api.post("/api/v1/monitors/", heartbeat(heartbeat_slug="backup"), format="json")
    assert response.status_code == 400 and "heartbeat_slug" in response.json()


def test_it_creates_a_cron_heartbeat_through_the_api(api):
    body = heartbeat(heartbeat_cron="0 3 * * 1-5", heartbeat_tz="Europe/Berlin")
    response = api.post("/api/v1/monitors/", body, format="json")
    assert response.status_code == 201, response.content
    monitor = Monitor.objects.get(pk=response.json()["id"])
    assert monitor.heartbeat_uuid and monitor.confirm_failures == 1
    assert response.json()["ping_url"].endswith(f"/ping/{monitor.heartbeat_uuid}")
