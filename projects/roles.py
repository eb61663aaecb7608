"""Who may change what inside a project: the one table of roles (pure, no queries).

| role | may change |
| --- | --- |
| owner | everything, deleting the project and managing owners included |
| admin | everything but deleting the project and managing owners |
| member | monitors (and their tags), alert rules, incidents |
| read_only | nothing (sees everything in the project) |

Reading is never decided here: every member reads the whole project.
"""

from __future__ import annotations

from enum import StrEnum

from django.db import models


class Role(models.TextChoices):
    OWNER = "owner", "owner"
    ADMIN = "admin", "admin"
    MEMBER = "member", "member"
    READ_ONLY = "read_only", "read-only"


class Area(StrEnum):
    """A family of objects a role may or may not change."""

    MONITORS = "monitors"
    RULES = "rules"
    INCIDENTS = "incidents"
    CHANNELS = "channels"
    WINDOWS = "windows"
    STATUS_PAGES = "status_pages"
    CONFIG = "config"
    MEMBERS = "members"
    KEYS = "keys"
    PROJECT = "project"


_MEMBER_AREAS = frozenset({Area.MONITORS, Area.RULES, Area.INCIDENTS})
_ALL_AREAS = frozenset(Area)
AREAS_OF: dict[str, frozenset[Area]] = {
    Role.OWNER: _ALL_AREAS,
    Role.ADMIN: _ALL_AREAS,
    Role.MEMBER: _MEMBER_AREAS,
    Role.READ_ONLY: frozenset(),
}
# A read-write API key acts in its project like an admin, except on its members, keys
# and settings: a key never mints keys, changes who is in the project, or lifts its
# two-factor rule.
KEY_AREAS = _ALL_AREAS - {Area.MEMBERS, Area.KEYS, Area.PROJECT}


def role_may_change(role: str | None, area: Area) -> bool:
    """Whether ``role`` (None: not a member) may create, change or delete in ``area``."""
    return role is not None and area in AREAS_OF.get(role, frozenset())


def role_may_delete_project(role: str | None) -> bool:
    """Only owners delete a project."""
    return role == Role.OWNER


def role_may_grant(role: str | None, *, old: str | None, new: str | None) -> bool:
    """Whether ``role`` may move a member from role ``old`` to ``new`` (None: not a
    member, i.e. invite or remove). Admins manage everyone but owners."""
    if role == Role.OWNER:
        return True
    if role == Role.ADMIN:
        return Role.OWNER not in (old, new)
    return False
