"""Each role against each API resource and dashboard page family: members read the
whole project, their role decides what they may change (403 inside), and someone
outside the project gets 404 for everything in it."""

from __future__ import annotations

import pytest
from django.test import Client

from monitors.models import Monitor
from tests.api_clients import token_client

ROLES = ["owner", "admin", "member", "read_only"]
# What each role may change, by resource (projects.roles).
MAY_CHANGE = {
    "monitors": {"owner", "admin", "member"},
    "rules": {"owner", "admin", "member"},
    "channels": {"owner", "admin"},
    "windows": {"owner", "admin"},
    "status-pages": {"owner", "admin"},
}
ENDPOINTS = {
    "monitors": ("/api/v1/monitors/{}/", "monitor", {"name": "renamed"}),
    "rules": ("/api/v1/rules/{}/", "rule", {"threshold": 3}),
    "channels": ("/api/v1/channels/{}/", "channel", {"name": "renamed"}),
    "windows": ("/api/v1/maintenance-windows/{}/", "window", {"name": "renamed"}),
    "status-pages": ("/api/v1/status-pages/{}/", "page", {"title": "renamed"}),
}


@pytest.mark.parametrize("resource", sorted(ENDPOINTS))
@pytest.mark.parametrize("role", [*ROLES, "outsider"])
def test_each_role_reads_and_changes_what_its_role_allows(team, role, resource, redis_client):
    path, key, change = ENDPOINTS[resource]
    url = path.format(team.objects[key].pk)
    api = token_client(team.users[role])

    read = api.get(url)
    changed = api.patch(url, change, format="json")

    if role == "outsider":
        assert (read.status_code, changed.status_code) == (404, 404)
    elif role in MAY_CHANGE[resource]:
        assert (read.status_code, changed.status_code) == (200, 200), changed.content
    else:
        assert (read.status_code, changed.status_code) == (200, 403)
        assert "role" in changed.json()["detail"]


@pytest.mark.parametrize("role", [*ROLES, "outsider"])
def test_deleting_follows_the_role_too(team, role, redis_client):
    monitor = team.objects["monitor"]
    answer = token_client(team.users[role]).delete(f"/api/v1/monitors/{monitor.pk}/")
    expected = {"outsider": 404, "read_only": 403}.get(role, 204)
    assert answer.status_code == expected
    assert Monitor.objects.filter(pk=monitor.pk).exists() == (expected != 204)


@pytest.mark.parametrize("role", [*ROLES, "outsider"])
def test_lists_hold_the_projects_objects_for_members_only(team, role, redis_client):
    listed = token_client(team.users[role]).get("/api/v1/monitors/").json()["results"]
    names = [m["name"] for m in listed]
    assert names == ([] if role == "outsider" else ["shop"])


@pytest.mark.parametrize("role", ROLES)
def test_a_create_in_the_project_needs_the_role(team, role, redis_client):
    answer = token_client(team.users[role]).post(
        "/api/v1/monitors/",
        {"project": team.project.pk, "name": "new", "url": "http://127.0.0.1:9/"},
        format="json",
    )
    if role == "read_only":
        assert answer.status_code == 403
        assert not Monitor.objects.filter(name="new").exists()
    else:
        assert answer.status_code == 201, answer.content
        assert Monitor.objects.get(name="new").project_id == team.project.pk


def test_a_create_names_no_project_it_may_not_see(team, redis_client):
    answer = token_client(team.users["outsider"]).post(
        "/api/v1/monitors/",
        {"project": team.project.pk, "name": "new", "url": "http://127.0.0.1:9/"},
        format="json",
    )
    assert answer.status_code == 400
    assert "project" in answer.json()


def test_a_create_without_a_project_goes_to_the_personal_project(team, redis_client):
    user = team.users["member"]
    answer = token_client(user).post(
        "/api/v1/monitors/", {"name": "mine", "url": "http://127.0.0.1:9/"}, format="json"
    )
    assert answer.status_code == 201
    assert answer.json()["project"] == user.personal_project.pk


def test_the_project_cannot_change_after_creation(team, redis_client):
    monitor = team.objects["monitor"]
    personal = team.users["owner"].personal_project
    answer = token_client(team.users["owner"]).patch(
        f"/api/v1/monitors/{monitor.pk}/", {"project": personal.pk}, format="json"
    )
    assert answer.status_code == 400
    assert Monitor.objects.get(pk=monitor.pk).project_id == team.project.pk


@pytest.mark.parametrize("role", [*ROLES, "outsider"])
def test_bulk_actions_follow_the_role(team, role, redis_client):
    monitor = team.objects["monitor"]
    answer = token_client(team.users[role]).post(
        "/api/v1/monitors/bulk/", {"action": "pause", "ids": [monitor.pk]}, format="json"
    )
    expected = {"outsider": 400, "read_only": 403}.get(role, 200)
    assert answer.status_code == expected
    assert Monitor.objects.get(pk=monitor.pk).enabled == (expected != 200)


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("role", [*ROLES, "outsider"])
def test_dashboard_monitor_pages_follow_the_role(team, role, redis_client):
    monitor = team.objects["monitor"]
    client = signed_in(team.users[role])
    page = client.get(f"/dashboard/monitors/{monitor.pk}/")
    check = client.post(f"/dashboard/monitors/{monitor.pk}/check/")
    if role == "outsider":
        assert (page.status_code, check.status_code) == (404, 404)
    elif role == "read_only":
        assert (page.status_code, check.status_code) == (200, 403)
    else:
        assert (page.status_code, check.status_code) == (200, 302)


@pytest.mark.parametrize("role", [*ROLES, "outsider"])
def test_dashboard_status_page_screens_follow_the_role(team, role, redis_client):
    page = team.objects["page"]
    client = signed_in(team.users[role])
    shown = client.get(f"/dashboard/status-pages/{page.pk}/")
    saved = client.post(f"/dashboard/status-pages/{page.pk}/", {"groups-TOTAL_FORMS": "0"})
    if role == "outsider":
        assert (shown.status_code, saved.status_code) == (404, 404)
    elif role in MAY_CHANGE["status-pages"]:
        assert (shown.status_code, saved.status_code) == (200, 200)
    else:
        assert (shown.status_code, saved.status_code) == (200, 403)


def test_a_deleted_account_takes_its_personal_project_but_not_the_teams_objects(team):
    leaver = team.users["admin"]
    theirs = Monitor.objects.create(
        owner=leaver, project=team.project, name="made by the leaver", url="http://127.0.0.1:9/"
    )
    personal = Monitor.objects.create(owner=leaver, name="private", url="http://127.0.0.1:9/")
    assert personal.project_id == leaver.personal_project.pk

    leaver.delete()

    assert Monitor.objects.get(pk=theirs.pk).owner is None
    assert not Monitor.objects.filter(pk=personal.pk).exists()
    assert Monitor.objects.filter(project=team.project).count() == 2


DASHBOARD_DELETES = {
    "channels": ("/dashboard/channels/{}/delete/", "channel"),
    "windows": ("/dashboard/maintenance/{}/delete/", "window"),
    "rules": ("/dashboard/rules/{}/delete/", "rule"),
}


@pytest.mark.parametrize("resource", sorted(DASHBOARD_DELETES))
@pytest.mark.parametrize("role", [*ROLES, "outsider"])
def test_dashboard_alerting_pages_follow_the_role(team, role, resource, redis_client):
    path, key = DASHBOARD_DELETES[resource]
    obj = team.objects[key]
    client = signed_in(team.users[role])
    asked = client.get(path.format(obj.pk))
    deleted = client.post(path.format(obj.pk))
    still_there = type(obj).objects.filter(pk=obj.pk).exists()
    if role == "outsider":
        assert (asked.status_code, deleted.status_code, still_there) == (404, 404, True)
    elif role in MAY_CHANGE[resource]:
        assert (asked.status_code, deleted.status_code, still_there) == (200, 302, False)
    else:
        assert (asked.status_code, deleted.status_code, still_there) == (200, 403, True)
