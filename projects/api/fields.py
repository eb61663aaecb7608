"""The ``project`` field of every resource that belongs to a project."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from projects.models import Project
from projects.selectors import projects_visible_to


@extend_schema_field(OpenApiTypes.INT)
class ProjectField(serializers.PrimaryKeyRelatedField):
    """A project id among those the caller sees (another is "does not exist", as for
    any id one may not see). Optional on create: the default is the API key's project,
    else the caller's personal project. Fixed once created."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault(
            "help_text",
            "The project it belongs to. On create, optional: an API key's project, else "
            "your personal project. Cannot change afterwards.",
        )
        super().__init__(**kwargs)

    def get_queryset(self) -> QuerySet[Project]:
        request = self.context.get("request")
        if request is None:  # the schema generator
            return Project.objects.none()
        return projects_visible_to(request.user)
