"""Whose objects a configuration file describes: the one place that decides it.

The unit is a project: its monitors, channels and maintenance windows; alert rules
belong to those monitors and tags are global labels. New objects an apply creates are
in that project, created by the ``actor`` (the user applying, or the user a command
names).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.db.models import QuerySet

from alerting.models import AlertRule, MaintenanceWindow, NotificationChannel
from monitors.models import Monitor
from projects.models import Project, personal_project_id


@dataclass(frozen=True)
class Scope:
    """The objects one configuration file covers, and what a new one is created with."""

    project: Project
    actor: User

    def monitors(self) -> QuerySet[Monitor]:
        return Monitor.objects.filter(project=self.project)

    def channels(self) -> QuerySet[NotificationChannel]:
        return NotificationChannel.objects.filter(project=self.project)

    def windows(self) -> QuerySet[MaintenanceWindow]:
        return MaintenanceWindow.objects.filter(project=self.project)

    def rules(self) -> QuerySet[AlertRule]:
        return AlertRule.objects.filter(monitor__project=self.project)

    def lock_name(self) -> str:
        """The named lock that lets one apply at a time change these objects."""
        return f"configfiles.project.{self.project.pk}"

    def new_fields(self) -> dict[str, Any]:
        """What every object created by an apply gets besides the file's fields."""
        return {"project": self.project, "owner": self.actor}

    def __str__(self) -> str:
        return f"project {self.project.name}"


def scope_for_owner(owner: User) -> Scope:
    """The scope of ``owner``'s personal project (staff included: a file is never
    everyone's)."""
    project = Project.objects.get(pk=personal_project_id(user_id=owner.pk))
    return Scope(project=project, actor=owner)


def scope_for_project(project: Project, *, actor: User) -> Scope:
    """The scope of ``project``, whose new objects ``actor`` creates. Whether ``actor``
    may apply there is the caller's check (the API's role check)."""
    return Scope(project=project, actor=actor)
