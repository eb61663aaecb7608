"""Writes to monitor configuration. Every writer (admin, API, importers, the demo
loader) goes through these so that validation is the same everywhere."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction

from monitors.models import Monitor, Tag


@transaction.atomic
def monitor_create(*, owner: User, tags: Iterable[str] = (), **fields: Any) -> Monitor:
    """Validate and save a new monitor; raises ValidationError and saves nothing if bad."""
    monitor = Monitor(owner=owner, **fields)
    monitor.full_clean()
    monitor.save()
    monitor_set_tags(monitor=monitor, names=tags)
    return monitor


@transaction.atomic
def monitor_update(
    *, monitor: Monitor, tags: Iterable[str] | None = None, **fields: Any
) -> Monitor:
    """Validate and save changes; on ValidationError the stored row is untouched."""
    for name, value in fields.items():
        setattr(monitor, name, value)
    monitor.full_clean()
    monitor.save()
    if tags is not None:
        monitor_set_tags(monitor=monitor, names=tags)
    return monitor


def monitor_set_tags(*, monitor: Monitor, names: Iterable[str]) -> None:
    wanted = sorted({name.strip().lower() for name in names if name.strip()})
    for name in wanted:
        Tag(name=name).clean_fields()
    tags = [Tag.objects.get_or_create(name=name)[0] for name in wanted]
    monitor.tags.set(tags)
