"""Reads of monitor configuration: who may see what, and which monitors exist.

``visible_to`` is the one access rule of the product, for pages and API alike:
owners see their own, staff see everything. Every page and endpoint starts from it,
so another user's object is simply not found (404) rather than forbidden (403,
which would confirm that it exists).
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import models

from core.db import sql_ids
from monitors.models import Monitor, MonitorQuerySet

Q = TypeVar("Q", bound=models.QuerySet[Any])


def visible_to(user: AbstractBaseUser | AnonymousUser, queryset: Q, *, owner: str = "owner") -> Q:
    """The rows of ``queryset`` that ``user`` may see: none when signed out, all for
    staff, else those whose ``owner`` path (e.g. ``"monitor__owner"``) is the user."""
    if not user.is_authenticated:
        return queryset.none()
    if getattr(user, "is_staff", False):
        return queryset
    return queryset.filter(**{f"{owner}_id": user.pk})


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
