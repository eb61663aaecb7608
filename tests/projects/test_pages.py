"""The dashboard's project pages: members, invitations and keys, by role; a new key's
secret is on the page that made it and never again."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client

from monitors.models import Monitor
from projects.models import ApiKey, Membership, key_hash

ROLES = ["owner", "admin", "member", "read_only"]


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("role", [*ROLES, "outsider"])
def test_the_project_page_is_for_members_only(team, role):
    answer = signed_in(team.users[role]).get(f"/dashboard/projects/{team.project.pk}/")
    assert answer.status_code == (404 if role == "outsider" else 200)
    if role != "outsider":
        assert "team-read_only" in answer.content.decode()


@pytest.mark.parametrize("role", [*ROLES, "outsider"])
def test_changing_a_role_on_the_page_follows_the_role(team, role):
    target = Membership.objects.get(project=team.project, user=team.users["member"])
    answer = signed_in(team.users[role]).post(
        f"/dashboard/projects/{team.project.pk}/members/{target.pk}/role/", {"role": "read_only"}
    )
    expected = {"outsider": 404, "member": 403, "read_only": 403}.get(role, 302)
    assert answer.status_code == expected
    target.refresh_from_db()
    assert target.role == ("read_only" if expected == 302 else "member")


@pytest.mark.parametrize("role", ["admin", "read_only"])
def test_removing_a_member_on_the_page(team, role):
    target = Membership.objects.get(project=team.project, user=team.users["member"])
    answer = signed_in(team.users[role]).post(
        f"/dashboard/projects/{team.project.pk}/members/{target.pk}/remove/"
    )
    assert answer.status_code == (302 if role == "admin" else 403)
    assert Membership.objects.filter(pk=target.pk).exists() == (role != "admin")


def test_inviting_on_the_page_sends_the_email(team, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        answer = signed_in(team.users["admin"]).post(
            f"/dashboard/projects/{team.project.pk}/invite/",
            {"email": "new@example.test", "role": "read_only"},
        )
    assert answer.status_code == 302
    assert [m.to for m in mail.outbox] == [["new@example.test"]]


def test_a_new_keys_secret_is_shown_once(team):
    client = signed_in(team.users["owner"])
    made = client.post(
        f"/dashboard/projects/{team.project.pk}/keys/", {"name": "deploy", "read_only": "on"}
    )
    assert made.status_code == 200
    assert made["Cache-Control"] == "no-store"
    key = ApiKey.objects.get(name="deploy")
    shown = re.search(r"<code>(us_[\w-]{40,})</code>", made.content.decode())
    assert shown is not None, "the new key's secret is shown once"
    secret = shown.group(1)
    assert key_hash(secret) == key.hashed and key.read_only
    again = client.get(f"/dashboard/projects/{team.project.pk}/").content.decode()
    assert secret not in again and f"us_{key.prefix}" in again


@pytest.mark.parametrize("role", ["admin", "member", "outsider"])
def test_revoking_a_key_on_the_page(team, role):
    owner = team.users["owner"]
    key = ApiKey.objects.create(
        project=team.project, name="k", prefix="abcdefgh", hashed="x" * 64, created_by=owner
    )
    answer = signed_in(team.users[role]).post(
        f"/dashboard/projects/{team.project.pk}/keys/{key.pk}/revoke/"
    )
    assert answer.status_code == {"admin": 302, "member": 403, "outsider": 404}[role]
    key.refresh_from_db()
    assert (key.revoked_at is not None) == (role == "admin")


def test_the_switcher_sends_new_monitors_to_the_chosen_project(team, redis_client):
    client = signed_in(team.users["member"])
    client.post("/dashboard/projects/switch/", {"project": team.project.pk})
    client.post(
        "/dashboard/monitors/new/",
        {
            "name": "from-page",
            "kind": "http",
            "url": "http://127.0.0.1:9/",
            "method": "GET",
            "headers": "{}",
            "expected_status_codes": "200-299",
            "keyword_mode": "present",
            "max_body_kib": 1024,
            "interval_seconds": 60,
            "timeout_seconds": 10,
            "confirm_failures": 2,
            "recover_successes": 1,
        },
    )
    created = Monitor.objects.filter(name="from-page").first()
    assert created is not None and created.project_id == team.project.pk


def test_the_switcher_refuses_a_project_one_is_not_in(team):
    client = signed_in(team.users["outsider"])
    client.post("/dashboard/projects/switch/", {"project": team.project.pk})
    assert client.session.get("sentinel_project_id") is None
