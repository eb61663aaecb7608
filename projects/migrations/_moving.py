"""The data steps the "project" migrations share: every user gets a personal project
(owner role), and every row of a model moves into its owner's personal project."""

from __future__ import annotations

from typing import Any

from django.db.models import OuterRef, Subquery


def personal_projects_ensure(apps: Any, schema_editor: Any = None) -> None:
    """Make the personal project (and owner membership) of each user who has none.

    Each app's step runs it again: a database migrated back past an app's step (but not
    past ``projects``) can have users made since ``0002_personal_projects`` ran."""
    User = apps.get_model("auth", "User")
    Project = apps.get_model("projects", "Project")
    Membership = apps.get_model("projects", "Membership")
    have = Project.objects.exclude(personal_of=None).values("personal_of_id")
    for user in User.objects.exclude(pk__in=have).only("pk", "username").iterator():
        project = Project.objects.create(name=user.username, personal_of_id=user.pk)
        Membership.objects.create(project=project, user_id=user.pk, role="owner")


def into_personal_projects(app_label: str, *model_names: str) -> Any:
    """A RunPython function that sets ``project`` of every row of ``model_names`` with
    none yet to its owner's personal project: one UPDATE per model."""

    def move(apps: Any, schema_editor: Any) -> None:
        personal_projects_ensure(apps)
        Project = apps.get_model("projects", "Project")
        personal = Project.objects.filter(personal_of_id=OuterRef("owner_id")).values("pk")[:1]
        for name in model_names:
            model = apps.get_model(app_label, name)
            model.objects.filter(project=None).update(project=Subquery(personal))

    return move
