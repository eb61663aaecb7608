"""Invitations by email link: the email holds the link, accepting makes a member with
the role, an expired or used link says so and changes nothing."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.core import mail
from django.test import Client

from projects.models import Invitation, Membership
from tests.api_clients import token_client
from tests.factories import UserFactory


def invite(team, settings, django_capture_on_commit_callbacks, *, role="member", by="admin"):
    with django_capture_on_commit_callbacks(execute=True):
        answer = token_client(team.users[by]).post(
            "/api/v1/invitations/",
            {"project": team.project.pk, "email": "new@example.test", "role": role},
            format="json",
        )
    return answer


def link_in(message) -> str:
    link = re.search(r"https?://\S+/invitations/\S+/", message.body)
    assert link is not None, f"no invitation link in {message.body!r}"
    return link.group(0)


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_an_invitation_is_emailed_and_accepting_makes_a_member(
    team, settings, django_capture_on_commit_callbacks, redis_client
):
    answer = invite(team, settings, django_capture_on_commit_callbacks)
    assert answer.status_code == 201
    [message] = mail.outbox
    assert message.to == ["new@example.test"]
    link = link_in(message)
    token = link.rstrip("/").rsplit("/", 1)[-1]
    assert token not in answer.content.decode()  # the token goes by email only
    newcomer = UserFactory()
    client = signed_in(newcomer)

    assert client.get(link).status_code == 200
    accepted = client.post(link)

    assert accepted.status_code == 302
    assert Membership.objects.get(project=team.project, user=newcomer).role == "member"
    again = signed_in(UserFactory()).post(link)
    assert again.status_code == 410
    assert "already been accepted" in again.content.decode()


def test_an_expired_invitation_says_so_and_changes_nothing(
    team, settings, django_capture_on_commit_callbacks, redis_client
):
    settings.SENTINEL_INVITATION_EXPIRY_HOURS = 1
    invite(team, settings, django_capture_on_commit_callbacks)
    link = link_in(mail.outbox[0])
    Invitation.objects.update(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
    newcomer = UserFactory()

    answer = signed_in(newcomer).post(link)

    assert answer.status_code == 410
    assert "expired" in answer.content.decode()
    assert not Membership.objects.filter(user=newcomer, project=team.project).exists()


def test_the_expiry_follows_the_setting(
    team, settings, django_capture_on_commit_callbacks, redis_client
):
    settings.SENTINEL_INVITATION_EXPIRY_HOURS = 5
    before = dt.datetime.now(dt.UTC)
    invite(team, settings, django_capture_on_commit_callbacks)
    expires = Invitation.objects.get().expires_at
    assert dt.timedelta(hours=5) <= expires - before < dt.timedelta(hours=5, minutes=1)


def test_an_unknown_link_is_refused(team, redis_client):
    answer = signed_in(team.users["outsider"]).post("/dashboard/projects/invitations/nope/")
    assert answer.status_code == 410
    assert "not valid" in answer.content.decode()


def test_accepting_needs_a_sign_in(team, settings, django_capture_on_commit_callbacks):
    invite(team, settings, django_capture_on_commit_callbacks)
    answer = Client().get(link_in(mail.outbox[0]))
    assert answer.status_code == 302 and "/login/" in answer["Location"]


@pytest.mark.parametrize(
    ("by", "role", "expected"),
    [("member", "member", 403), ("admin", "owner", 403), ("owner", "owner", 201)],
)
def test_inviting_follows_the_role(
    team, settings, django_capture_on_commit_callbacks, by, role, expected, redis_client
):
    answer = invite(team, settings, django_capture_on_commit_callbacks, role=role, by=by)
    assert answer.status_code == expected
    assert len(mail.outbox) == (1 if expected == 201 else 0)
