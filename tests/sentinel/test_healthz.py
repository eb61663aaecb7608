from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_healthz_is_200_when_database_redis_and_broker_answer(client, redis_client):
    response = client.get("/healthz")

    assert response.status_code == 200
    body = response.json()
    assert set(body.pop("regions")) == {"local"}  # each region's workers (tests/reporting)
    assert body == {
        "status": "ok",
        "services": {"database": {"ok": True}, "redis": {"ok": True}, "broker": {"ok": True}},
        "buffer": {"depth": 0, "oldest_age_seconds": None, "dead_letters": 0},
    }


@pytest.mark.parametrize(
    ("setting", "url", "service"),
    [
        ("REDIS_URL", "redis://127.0.0.1:1/0", "redis"),
        ("CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:1//", "broker"),
    ],
)
def test_healthz_is_503_naming_the_service_that_is_down(client, settings, setting, url, service):
    setattr(settings, setting, url)

    response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["services"][service]["ok"] is False
    assert "refused" in body["services"][service]["error"].lower()
    assert all(state["ok"] for name, state in body["services"].items() if name != service)
    if service == "redis":
        assert "refused" in body["buffer"]["error"].lower()


# transactional_db: closing the connection inside a test transaction would lose it.
@pytest.mark.django_db(transaction=True)
def test_healthz_is_503_when_the_database_is_down(client):
    from django.db import connections

    from statuspages.domains import domains

    domains.forget()  # the custom-domain lookup before every request meets the outage too
    # Point the connection at a closed port for this request only.
    connection = connections["default"]
    original = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = "1"
    try:
        response = client.get("/healthz")
    finally:
        connection.close()
        connection.settings_dict["PORT"] = original

    assert response.status_code == 503
    assert response.json()["services"]["database"]["ok"] is False


def test_healthz_does_not_accept_writes(client):
    assert client.post("/healthz").status_code == 405
