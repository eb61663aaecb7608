from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from projects.models import Membership, Project
from projects.roles import Role
from statuspages.models import StatusPage
from tests.factories import (
    AlertRuleFactory,
    MaintenanceWindowFactory,
    MonitorFactory,
    NotificationChannelFactory,
    UserFactory,
)


@dataclass
class Team:
    """A shared project with one user per role, an outsider, and one of each object."""

    project: Project
    users: dict[str, Any]
    objects: dict[str, Any]


@pytest.fixture
def team(db) -> Team:
    owner = UserFactory(username="team-owner")
    project = Project.objects.create(name="Team")
    users = {"outsider": UserFactory(username="outsider")}
    for role in Role:
        user = owner if role == Role.OWNER else UserFactory(username=f"team-{role.value}")
        Membership.objects.create(project=project, user=user, role=role)
        users[role.value] = user
    monitor = MonitorFactory(owner=owner, project=project, name="shop")
    channel = NotificationChannelFactory(owner=owner, project=project)
    objects = {
        "monitor": monitor,
        "channel": channel,
        "window": MaintenanceWindowFactory(owner=owner, project=project),
        "rule": AlertRuleFactory(monitor=monitor),
        "page": StatusPage.objects.create(
            owner=owner, project=project, slug="team-status", title="Team"
        ),
    }
    return Team(project=project, users=users, objects=objects)
