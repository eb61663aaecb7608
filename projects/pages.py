"""The dashboard's side of projects: the role check of a page that writes, the
project new objects go to (the project switcher's choice), and the way to two-factor
sign-in for members of a project that requires it."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from projects.roles import Area
from projects.selectors import (
    default_project_id,
    may_change,
    projects_needing_2fa,
    projects_visible_to,
)

SESSION_KEY = "sentinel_project_id"


def require_change(request: HttpRequest, project_id: int, area: Area) -> None:
    """403 (``PermissionDenied``) unless the signed-in user may change ``area`` objects
    of the project. Call it after the object was found through ``visible_to`` (so a
    non-member already had a 404)."""
    if not may_change(request.user, project_id, area):
        raise PermissionDenied("Your role in this project does not allow this change.")


def current_project_id(request: HttpRequest) -> int:
    """The project the dashboard creates new objects in: the one chosen in the project
    switcher while the user still sees it, else their personal project."""
    chosen = request.session.get(SESSION_KEY)
    if chosen and projects_visible_to(request.user).filter(pk=chosen).exists():
        return int(chosen)
    return default_project_id(request.user)


def current_project_set(request: HttpRequest, project_id: int) -> bool:
    """Remember ``project_id`` as the current project if the user sees it."""
    if not projects_visible_to(request.user).filter(pk=project_id).exists():
        return False
    request.session[SESSION_KEY] = project_id
    return True


def two_factor_first(request: HttpRequest) -> HttpResponse | None:
    """Send a member of a project that requires two-factor sign-in, signed in without
    a code, to set it up (and sign in again with it); None when nothing is hidden."""
    needing = list(projects_needing_2fa(request.user).values_list("name", flat=True))
    if not needing:
        return None
    messages.warning(
        request,
        f"{', '.join(needing)} require two-factor sign-in: turn it on here, then sign in "
        "again with a code to see them.",
    )
    return redirect("two-factor")
