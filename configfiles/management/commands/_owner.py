"""The ``--owner`` argument the configuration commands share."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import CommandError, CommandParser

from configfiles.scope import Scope, scope_for_owner


def owner_argument(parser: CommandParser) -> None:
    parser.add_argument("--owner", required=True, help="user name whose objects these are")


def scope_of(options: dict[str, Any]) -> Scope:
    try:
        owner = User.objects.get(username=options["owner"])
    except User.DoesNotExist as exc:
        raise CommandError(f"--owner: no user named {options['owner']!r}") from exc
    return scope_for_owner(owner)
