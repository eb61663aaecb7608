"""Reads of projects: which a user belongs to, and their role there.

``visible_to`` is the one access rule of the product (re-exported by
``monitors.selectors``, where most callers find it); writes ask ``may_change``.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from projects.models import ApiKey, Membership, Project, personal_project_id
from projects.roles import KEY_AREAS, Area, Role, role_may_change

AnyUser = AbstractBaseUser | AnonymousUser
Q = TypeVar("Q", bound=QuerySet[Any])


def api_key_of(user: Any) -> ApiKey | None:
    """The API key a request was authenticated with (``projects.api.auth``), if any:
    it limits the request to the key's project."""
    return getattr(user, "api_key", None)


def unverified_session(user: Any) -> bool:
    """Whether ``user`` signed in to this session without a second factor. Only a
    session's user carries ``is_verified`` (django-otp's middleware); a token's or an
    API key's does not, and those are not held to a project's two-factor rule."""
    is_verified = getattr(user, "is_verified", None)
    return callable(is_verified) and not is_verified()


def member_project_ids(user: AnyUser) -> QuerySet[Membership, int]:
    """The ids of the projects ``user`` is a member of, as a subquery (never
    evaluated here, so a caller's filter stays one statement). A session signed in
    without a code leaves out the projects that require two-factor sign-in."""
    memberships = Membership.objects.filter(user_id=int(user.pk or 0))
    if unverified_session(user):
        memberships = memberships.filter(project__require_2fa=False)
    return memberships.values_list("project_id", flat=True)


def projects_needing_2fa(user: AnyUser) -> QuerySet[Project]:
    """The projects ``user`` is a member of but does not see until they sign in with a
    second factor (empty for a verified session, a token or a key)."""
    if not user.is_authenticated or not unverified_session(user):
        return Project.objects.none()
    return Project.objects.filter(memberships__user_id=user.pk, require_2fa=True)


def visible_to(user: AnyUser, queryset: Q, *, project: str = "project") -> Q:
    """The rows of ``queryset`` that ``user`` may see: none when signed out, those of
    the key's project for an API key, all for staff, else those whose ``project`` path
    (e.g. ``"monitor__project"``; ``""`` for a queryset of projects) is a project the
    user is a member of."""
    if not user.is_authenticated:
        return queryset.none()
    column = f"{project}_id" if project else "pk"  # "": the projects themselves
    key = api_key_of(user)
    if key is not None:
        return queryset.filter(**{column: key.project_id})
    if getattr(user, "is_staff", False):
        return queryset
    return queryset.filter(**{f"{column}__in": member_project_ids(user)})


def projects_visible_to(user: AnyUser) -> QuerySet[Project]:
    """The projects ``user`` sees (``visible_to`` of the projects themselves)."""
    return visible_to(user, Project.objects.all(), project="")


def roles_of(user: AnyUser) -> dict[int, str]:
    """``{project id: role}`` of every project ``user`` is a member of."""
    rows = Membership.objects.filter(user_id=int(user.pk or 0)).values_list("project_id", "role")
    return dict(rows)


def role_of(user: AnyUser, project_id: int) -> str | None:
    """``user``'s role in the project: staff act as owners everywhere; None for a
    non-member (and for a member it is hidden from: ``member_project_ids``)."""
    if not user.is_authenticated:
        return None
    if getattr(user, "is_staff", False) and api_key_of(user) is None:
        return Role.OWNER
    return (
        Membership.objects.filter(project_id=project_id, project_id__in=member_project_ids(user))
        .filter(user_id=user.pk)
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
