"""Projects and members through the API: admins manage everyone but owners, owners
everything, a project keeps an owner, only owners delete a project, and outsiders
find nothing."""

from __future__ import annotations

import pytest

from monitors.models import Monitor
from projects.models import Membership, Project
from tests.api_clients import token_client


def member(team, role):
    return Membership.objects.get(project=team.project, user=team.users[role])


def test_projects_list_the_callers_with_their_role(team, redis_client):
    listed = token_client(team.users["member"]).get("/api/v1/projects/").json()["results"]
    assert sorted((p["name"], p["role"], p["personal"]) for p in listed) == [
        ("Team", "member", False),
        ("team-member", "owner", True),
    ]


def test_a_new_project_is_owned_by_its_creator(user, redis_client):
    made = token_client(user).post("/api/v1/projects/", {"name": "Shop"}, format="json")
    assert made.status_code == 201
    project = Project.objects.get(pk=made.json()["id"])
    assert project.memberships.get().user == user
    assert made.json()["role"] == "owner"


@pytest.mark.parametrize(("role", "expected"), [("admin", 403), ("owner", 204)])
def test_only_owners_delete_a_project(team, role, expected, redis_client):
    answer = token_client(team.users[role]).delete(f"/api/v1/projects/{team.project.pk}/")
    assert answer.status_code == expected
    assert Monitor.objects.filter(project=team.project).exists() == (expected == 403)


def test_a_personal_project_is_not_deleted(user, redis_client):
    answer = token_client(user).delete(f"/api/v1/projects/{user.personal_project.pk}/")
    assert answer.status_code == 403
    assert "personal" in answer.json()["detail"]


def test_an_outsider_finds_no_project_members_or_keys(team, redis_client):
    api = token_client(team.users["outsider"])
    assert api.get(f"/api/v1/projects/{team.project.pk}/").status_code == 404
    assert api.get(f"/api/v1/members/{member(team, 'admin').pk}/").status_code == 404
    assert api.get(f"/api/v1/members/?project={team.project.pk}").json()["results"] == []


@pytest.mark.parametrize(
    ("role", "new_role", "expected"),
    [
        ("admin", "read_only", 200),
        ("admin", "owner", 403),
        ("member", "read_only", 403),
        ("read_only", "member", 403),
        ("owner", "owner", 200),
    ],
)
def test_changing_a_role_follows_the_callers_role(team, role, new_role, expected, redis_client):
    target = member(team, "member")
    answer = token_client(team.users[role]).patch(
        f"/api/v1/members/{target.pk}/", {"role": new_role}, format="json"
    )
    assert answer.status_code == expected
    target.refresh_from_db()
    assert target.role == (new_role if expected == 200 else "member")


def test_an_admin_cannot_remove_an_owner(team, redis_client):
    owner = member(team, "owner")
    answer = token_client(team.users["admin"]).delete(f"/api/v1/members/{owner.pk}/")
    assert answer.status_code == 403
    assert Membership.objects.filter(pk=owner.pk).exists()


def test_the_last_owner_stays(team, redis_client):
    owner = member(team, "owner")
    api = token_client(team.users["owner"])
    demoted = api.patch(f"/api/v1/members/{owner.pk}/", {"role": "admin"}, format="json")
    removed = api.delete(f"/api/v1/members/{owner.pk}/")
    assert (demoted.status_code, removed.status_code) == (400, 403)
    assert Membership.objects.get(pk=owner.pk).role == "owner"


def test_an_admin_adds_an_existing_user(team, redis_client):
    answer = token_client(team.users["admin"]).post(
        "/api/v1/members/",
        {"project": team.project.pk, "username": "outsider", "role": "read_only"},
        format="json",
    )
    assert answer.status_code == 201
    assert member(team, "outsider").role == "read_only"
