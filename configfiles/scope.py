"""Whose objects a configuration file describes: the one place that decides it.

Today the unit is an owner (a user) and their monitors, channels and maintenance
windows; alert rules belong to those monitors and tags are global labels. When projects
arrive, a project's ``Scope`` replaces ``scope_for_owner`` and nothing else changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.db.models import QuerySet

from alerting.models import AlertRule, MaintenanceWindow, NotificationChannel
from monitors.models import Monitor


@dataclass(frozen=True)
class Scope:
    """The objects one configuration file covers, and what a new one is created with."""

    owner: User

    def monitors(self) -> QuerySet[Monitor]:
        return Monitor.objects.filter(owner=self.owner)

    def channels(self) -> QuerySet[NotificationChannel]:
        return NotificationChannel.objects.filter(owner=self.owner)

    def windows(self) -> QuerySet[MaintenanceWindow]:
        return MaintenanceWindow.objects.filter(owner=self.owner)

    def rules(self) -> QuerySet[AlertRule]:
        return AlertRule.objects.filter(monitor__owner=self.owner)

    def lock_name(self) -> str:
        """The named lock that lets one apply at a time change these objects."""
        return f"configfiles.owner.{self.owner.pk}"

    def new_fields(self) -> dict[str, Any]:
        """What every object created by an apply gets besides the file's fields."""
        return {"owner": self.owner}

    def __str__(self) -> str:
        return f"owner {self.owner.get_username()}"


def scope_for_owner(owner: User) -> Scope:
    """The scope of ``owner``'s own objects (staff included: a file is never everyone's)."""
    return Scope(owner=owner)
