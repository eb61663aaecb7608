"""Reads of monitor configuration: who may see what, and which monitors exist.

``visible_to`` (defined in ``projects.selectors``, below every app that holds
project objects, and re-exported here) is the one access rule of the product, for
pages and API alike: members of a project see everything in it, an API key sees its
project, staff see everything. Every page and endpoint starts from it, so an object of
a project one is not in is simply not found (404) rather than forbidden (403, which
would confirm that it exists). Whether a member may change what they see is their
role's (``projects.selectors.may_change``): 403 inside the project.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from core.db import sql_ids
from monitors.models import Monitor, MonitorQuerySet
from projects.selectors import visible_to

__all__ = ["monitor_ids_existing", "monitors_visible_to", "visible_to"]


def monitors_visible_to(user: AbstractBaseUser | AnonymousUser) -> MonitorQuerySet:
    """The monitors ``user`` may see (``visible_to``)."""
    return visible_to(user, Monitor.objects.all())


def monitor_ids_existing(cursor: Any, monitor_ids: set[int]) -> set[int]:
    """The ids in ``monitor_ids`` whose monitor exists, read with ``cursor`` (a DB-API
    cursor of the caller's transaction)."""
    if not monitor_ids:
        return set()
    # Only ints and a model's table name are formatted into the SQL.
    ids = sql_ids(monitor_ids)
    cursor.execute(f"SELECT id FROM {Monitor._meta.db_table} WHERE id IN ({ids})")  # noqa: S608
    return {row[0] for row in cursor.fetchall()}
