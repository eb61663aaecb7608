"""Project API keys: shown once, stored hashed, limited to their project, read-only
ones refused on every write, revocable, with a last-used time and a rate budget each."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from monitors.models import Monitor
from projects.models import ApiKey, key_hash
from projects.services import api_key_create
from tests.api_clients import token_client
from tests.factories import MonitorFactory


def key_client(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


@pytest.fixture
def keys(team):
    owner = team.users["owner"]
    _, read_only = api_key_create(project=team.project, name="ro", read_only=True, created_by=owner)
    _, read_write = api_key_create(
        project=team.project, name="rw", read_only=False, created_by=owner
    )
    return {"ro": read_only, "rw": read_write}


def test_a_new_keys_secret_is_in_its_creation_answer_only(team, redis_client):
    api = token_client(team.users["admin"])
    made = api.post(
        "/api/v1/api-keys/",
        {"project": team.project.pk, "name": "deploy", "read_only": False},
        format="json",
    )
    assert made.status_code == 201
    secret = made.json()["secret"]
    assert secret.startswith("us_") and len(secret) > 40
    key = ApiKey.objects.get(pk=made.json()["id"])
    assert key.hashed == key_hash(secret) and secret not in key.hashed
    listed = api.get("/api/v1/api-keys/")
    shown = api.get(f"/api/v1/api-keys/{key.pk}/")
    for answer in (listed, shown):
        assert answer.status_code == 200
        assert secret.encode() not in answer.content
        assert key.hashed.encode() not in answer.content


@pytest.mark.parametrize("role", ["member", "read_only"])
def test_only_admins_and_owners_make_keys(team, role, redis_client):
    answer = token_client(team.users[role]).post(
        "/api/v1/api-keys/", {"project": team.project.pk, "name": "x"}, format="json"
    )
    assert answer.status_code == 403
    assert not ApiKey.objects.exists()


def test_a_key_reads_its_project_only(team, keys, redis_client):
    elsewhere = MonitorFactory(owner=team.users["owner"])  # the owner's personal project
    api = key_client(keys["ro"])
    listed = api.get("/api/v1/monitors/").json()["results"]
    assert [m["name"] for m in listed] == ["shop"]
    assert api.get(f"/api/v1/monitors/{elsewhere.pk}/").status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/api/v1/monitors/", {"name": "n", "url": "http://127.0.0.1:9/"}),
        ("patch", "/api/v1/monitors/{monitor}/", {"name": "renamed"}),
        ("delete", "/api/v1/monitors/{monitor}/", None),
        ("post", "/api/v1/monitors/{monitor}/check-now/", None),
        ("post", "/api/v1/monitors/bulk/", {"action": "pause", "ids": ["{monitor}"]}),
        ("patch", "/api/v1/channels/{channel}/", {"name": "renamed"}),
        ("patch", "/api/v1/rules/{rule}/", {"threshold": 4}),
        ("patch", "/api/v1/maintenance-windows/{window}/", {"name": "renamed"}),
        ("patch", "/api/v1/status-pages/{page}/", {"title": "renamed"}),
        ("post", "/api/v1/config/apply", None),
    ],
)
def test_a_read_only_key_is_refused_on_every_write(team, keys, method, path, body, redis_client):
    ids = {name: obj.pk for name, obj in team.objects.items()}
    if body and "ids" in body:
        body = {**body, "ids": [ids["monitor"]]}
    answer = getattr(key_client(keys["ro"]), method)(path.format(**ids), body, format="json")
    assert answer.status_code == 403
    assert answer.json()["detail"] == "This API key is read-only."
    assert Monitor.objects.get(pk=ids["monitor"]).name == "shop"


def test_a_read_write_key_writes_in_its_project(team, keys, redis_client):
    api = key_client(keys["rw"])
    made = api.post("/api/v1/monitors/", {"name": "n", "url": "http://127.0.0.1:9/"}, format="json")
    assert made.status_code == 201
    assert made.json()["project"] == team.project.pk
    monitor = Monitor.objects.get(pk=made.json()["id"])
    assert monitor.owner == team.users["owner"]  # created by the key's creator


def test_a_read_write_key_manages_no_members_nor_keys(team, keys, redis_client):
    api = key_client(keys["rw"])
    key = api.post("/api/v1/api-keys/", {"project": team.project.pk, "name": "x"}, format="json")
    member = api.post(
        "/api/v1/members/",
        {"project": team.project.pk, "username": "outsider", "role": "owner"},
        format="json",
    )
    assert (key.status_code, member.status_code) == (403, 403)


def test_a_revoked_key_stops_working(team, keys, redis_client):
    key = ApiKey.objects.get(name="ro")
    api = token_client(team.users["owner"])
    assert key_client(keys["ro"]).get("/api/v1/monitors/").status_code == 200
    assert api.delete(f"/api/v1/api-keys/{key.pk}/").status_code == 204
    assert key_client(keys["ro"]).get("/api/v1/monitors/").status_code == 401
    key.refresh_from_db()
    assert key.revoked_at is not None


def test_a_wrong_secret_with_a_known_prefix_is_refused(team, keys, redis_client):
    forged = keys["ro"][:-4] + "AAAA"
    assert key_client(forged).get("/api/v1/monitors/").status_code == 401


def test_a_key_notes_when_it_was_last_used(team, keys, redis_client):
    assert ApiKey.objects.get(name="ro").last_used_at is None
    key_client(keys["ro"]).get("/api/v1/monitors/")
    assert ApiKey.objects.get(name="ro").last_used_at is not None


def test_each_key_has_its_own_rate_budget(team, keys, settings, redis_client):
    settings.SENTINEL_API_RATE = "2/minute"
    ro, rw = key_client(keys["ro"]), key_client(keys["rw"])
    assert [ro.get("/api/v1/monitors/").status_code for _ in range(3)] == [200, 200, 429]
    assert rw.get("/api/v1/monitors/").status_code == 200


def test_sessions_and_tokens_still_work(team, redis_client):
    session = Client()
    session.force_login(team.users["member"])
    assert session.get("/api/v1/monitors/").status_code == 200
    assert token_client(team.users["member"]).get("/api/v1/monitors/").status_code == 200
