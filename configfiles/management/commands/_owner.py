"""The ``--owner`` (and optional ``--project``) arguments the configuration commands
share: the user's personal project, or a project of theirs by id."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import CommandError, CommandParser

from configfiles.scope import Scope, scope_for_owner, scope_for_project
from projects.models import Project


def owner_argument(parser: CommandParser) -> None:
    parser.add_argument(
        "--owner", required=True, help="user name: creates new objects; their personal project"
    )
    parser.add_argument(
        "--project", type=int, help="project id (one --owner is a member of) instead"
    )


def scope_of(options: dict[str, Any]) -> Scope:
    try:
        owner = User.objects.get(username=options["owner"])
    except User.DoesNotExist as exc:
        raise CommandError(f"--owner: no user named {options['owner']!r}") from exc
    if not options.get("project"):
        return scope_for_owner(owner)
    project = Project.objects.filter(pk=options["project"], memberships__user=owner).first()
    if project is None:
        raise CommandError(f"--project: {options['project']} is not a project of {owner}")
    return scope_for_project(project, actor=owner)
