"""Writes inside a project: the role (or API key) decides, with a 403.

Reads are decided by the querysets (``monitors.selectors.visible_to``): an object of a
project one is not in is a 404 before any of this runs. A viewset that holds project
objects mixes in ``InProjectMixin`` and names its ``project_area``.
"""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions, permissions, serializers
from rest_framework.request import Request

from projects.roles import Area
from projects.selectors import api_key_of, default_project_id, may_change

CHANGE_REFUSED = "Your role in this project does not allow this change."
KEY_READ_ONLY = "This API key is read-only."


def require_change(user: Any, project_id: int, area: Area) -> None:
    """Raise PermissionDenied (403) unless ``user`` may change ``area`` in the project."""
    if not may_change(user, project_id, area):
        key = api_key_of(user)
        raise exceptions.PermissionDenied(
            KEY_READ_ONLY if key is not None and key.read_only else CHANGE_REFUSED
        )


class ProjectRole(permissions.BasePermission):
    """Read-only keys may not write anywhere; writes to an object of a view with a
    ``project_area`` (``InProjectMixin``) need a role that may change that area in the
    object's project. One of the default permission classes (settings)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        key = api_key_of(request.user)
        if request.method not in permissions.SAFE_METHODS and key is not None and key.read_only:
            self.message = KEY_READ_ONLY
            return False
        return True

    def has_object_permission(self, request: Request, view: Any, obj: Any) -> bool:
        if request.method in permissions.SAFE_METHODS or not hasattr(view, "project_area"):
            return True
        require_change(request.user, view.project_id_of(obj), view.project_area)
        return True


class InProjectMixin:
    """For viewsets of objects in a project: creates go to the chosen (or default)
    project after a role check; the project cannot change afterwards."""

    project_area: Area

    def _request(self) -> Request:
        return self.request  # type: ignore[attr-defined]

    def project_id_of(self, obj: Any) -> int:
        """The project an object belongs to (rules and incidents: their monitor's)."""
        return int(obj.project_id)

    def creation_project_id(self, serializer: serializers.BaseSerializer[Any]) -> int:
        project = serializer.validated_data.pop("project", None)
        return project.pk if project is not None else default_project_id(self._request().user)

    def perform_create(self, serializer: serializers.BaseSerializer[Any]) -> None:
        project_id = self.creation_project_id(serializer)
        require_change(self._request().user, project_id, self.project_area)
        serializer.save(**self.creation_fields(project_id))

    def creation_fields(self, project_id: int) -> dict[str, Any]:
        return {"project_id": project_id}

    def perform_update(self, serializer: serializers.BaseSerializer[Any]) -> None:
        project = serializer.validated_data.pop("project", None)
        instance = serializer.instance
        if project is not None and project.pk != self.project_id_of(instance):
            raise serializers.ValidationError(
                {"project": ["The project is chosen at creation and cannot change."]}
            )
        serializer.save()
