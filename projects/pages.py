"""The dashboard's side of projects: the role check of a page that writes, and the
project new objects go to (the project switcher's choice)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from projects.roles import Area
from projects.selectors import default_project_id, may_change, projects_visible_to

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
