"""A project that requires two-factor sign-in hides from its members' sessions signed
in without a code (they are sent to set it up; tokens and keys are unaffected), and a
project's audit trail is its admins'."""

from __future__ import annotations

import time

import pytest
from django.test import Client

from projects.services import api_key_create
from tests.accounts.test_two_factor import PASSWORD, enrol, totp
from tests.api_clients import token_client
from tests.projects.test_keys import key_client


@pytest.fixture
def strict(team):
    team.project.require_2fa = True
    team.project.save()
    return team


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_session_without_a_code_is_sent_to_set_it_up(strict, redis_client):
    client = signed_in(strict.users["member"])
    monitor = strict.objects["monitor"]

    assert client.get(f"/dashboard/monitors/{monitor.pk}/").status_code == 404
    assert client.get(f"/api/v1/monitors/{monitor.pk}/").status_code == 404
    sent = client.get(f"/dashboard/projects/{strict.project.pk}/")
    assert sent.status_code == 302 and sent["Location"] == "/account/two-factor/"
    overview = client.get("/dashboard/")
    assert overview.status_code == 302 and overview["Location"] == "/account/two-factor/"


def test_a_session_signed_in_with_a_code_sees_the_project(strict, redis_client):
    user = strict.users["member"]
    key, _ = enrol(signed_in(user))
    client = Client()
    client.post("/dashboard/login/", {"username": user.username, "password": PASSWORD})
    client.post("/dashboard/login/code/", {"code": totp(key, time.time() + 30)})

    monitor = strict.objects["monitor"]
    assert client.get(f"/dashboard/monitors/{monitor.pk}/").status_code == 200
    assert client.get(f"/api/v1/monitors/{monitor.pk}/").status_code == 200
    assert client.get("/dashboard/").status_code == 200


def test_tokens_and_api_keys_are_not_held_to_it(strict, redis_client):
    monitor = strict.objects["monitor"]
    _, secret = api_key_create(
        project=strict.project, name="ci", read_only=True, created_by=strict.users["owner"]
    )
    assert key_client(secret).get(f"/api/v1/monitors/{monitor.pk}/").status_code == 200
    token = token_client(strict.users["member"])
    assert token.get(f"/api/v1/monitors/{monitor.pk}/").status_code == 200


def test_other_projects_stay_open_without_a_code(strict, redis_client):
    user = strict.users["member"]
    client = signed_in(user)
    mine = user.personal_project
    assert client.get(f"/dashboard/projects/{mine.pk}/").status_code == 200


@pytest.mark.parametrize(
    ("role", "expected"),
    [("owner", 200), ("admin", 200), ("member", 403), ("read_only", 403), ("outsider", 404)],
)
def test_the_audit_trail_is_for_admins(team, role, expected, redis_client):
    token_client(team.users["owner"]).patch(
        f"/api/v1/monitors/{team.objects['monitor'].pk}/", {"name": "renamed"}, format="json"
    )
    answer = signed_in(team.users[role]).get(f"/dashboard/projects/{team.project.pk}/audit/")
    assert answer.status_code == expected
    if expected == 200:
        page = answer.content.decode()
        assert "renamed" in page and "team-owner" in page


def test_the_audit_trail_holds_the_projects_entries_only_deletions_included(team, redis_client):
    owner = token_client(team.users["owner"])
    channel = team.objects["channel"]
    owner.delete(f"/api/v1/channels/{channel.pk}/")
    owner.post(
        "/api/v1/monitors/", {"name": "elsewhere", "url": "http://127.0.0.1:9/"}, format="json"
    )
    page = signed_in(team.users["owner"]).get(f"/dashboard/projects/{team.project.pk}/audit/")
    text = page.content.decode()
    assert channel.name in text and "delete" in text
    assert "elsewhere" not in text  # the owner's personal project
