"""Who may see which monitors: owners see their own, staff see every monitor.

Every page and API endpoint starts from this queryset, so another user's monitor is
simply not found (404) rather than forbidden (403, which would confirm it exists).
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from monitors.models import Monitor, MonitorQuerySet


def monitors_visible_to(user: AbstractBaseUser | AnonymousUser) -> MonitorQuerySet:
    queryset: MonitorQuerySet = Monitor.objects.all()
    if not user.is_authenticated:
        return queryset.none()
    if getattr(user, "is_staff", False):
        return queryset
    return queryset.filter(owner_id=user.pk)
