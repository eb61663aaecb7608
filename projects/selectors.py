"""Reads of projects: which a user belongs to, and their role there.

``monitors.selectors.visible_to`` (the one access rule) is built on
``member_project_ids``; writes ask ``may_change``.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from projects.models import ApiKey, Membership, Project, personal_project_id
from projects.roles import KEY_AREAS, Area, Role, role_may_change

AnyUser = AbstractBaseUser | AnonymousUser


def api_key_of(user: Any) -> ApiKey | None:
    """The API key a request was authenticated with (``projects.api.auth``), if any:
    it limits the request to the key's project."""
    return getattr(user, "api_key", None)


def member_project_ids(user: AnyUser) -> QuerySet[Membership, int]:
    """The ids of the projects ``user`` is a member of, as a subquery (never
    evaluated here, so a caller's filter stays one statement)."""
    return Membership.objects.filter(user_id=int(user.pk or 0)).values_list("project_id", flat=True)


def projects_visible_to(user: AnyUser) -> QuerySet[Project]:
    """The projects ``user`` sees: none signed out, the key's with an API key, all for
    staff, else those they are a member of."""
    if not user.is_authenticated:
        return Project.objects.none()
    key = api_key_of(user)
    if key is not None:
        return Project.objects.filter(pk=key.project_id)
    if getattr(user, "is_staff", False):
        return Project.objects.all()
    return Project.objects.filter(pk__in=member_project_ids(user))


def role_of(user: AnyUser, project_id: int) -> str | None:
    """``user``'s role in the project: staff act as owners everywhere; None for a
    non-member."""
    if not user.is_authenticated:
        return None
    if getattr(user, "is_staff", False) and api_key_of(user) is None:
        return Role.OWNER
    return (
        Membership.objects.filter(user_id=user.pk, project_id=project_id)
        .values_list("role", flat=True)
        .first()
    )


def may_change(user: AnyUser, project_id: int, area: Area) -> bool:
    """Whether ``user`` may create, change or delete ``area`` objects of the project.
    An API key decides alone: read-only keys change nothing, read-write keys what
    ``KEY_AREAS`` lists, in their own project only."""
    key = api_key_of(user)
    if key is not None:
        return key.project_id == project_id and not key.read_only and area in KEY_AREAS
    return role_may_change(role_of(user, project_id), area)


def default_project_id(user: AnyUser) -> int:
    """Where a new object goes when its writer names no project: an API key's project,
    else the user's personal project."""
    key = api_key_of(user)
    if key is not None:
        return key.project_id
    return personal_project_id(user_id=user.pk)  # type: ignore[arg-type]
