"""Writes to monitor configuration and the actions on monitors. Every writer (admin,
dashboard, API, importers, the demo loader) goes through these so that validation and
behaviour are the same everywhere."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from core.time import to_epoch_ms
from monitors.dispatch import probe_batches_publisher
from monitors.models import Monitor, Tag
from monitors.signals import monitors_enabled_changed
from monitors.slots import SPEC_COLUMNS, Slot, spec_encode

# What owners may set on a monitor, through the API or the dashboard form (tags and
# enabled are handled apart: they are not plain columns or change the state).
MONITOR_EDITABLE_FIELDS = (
    "name",
    *Monitor.SCHEDULE_FIELDS,
    *Monitor.HEARTBEAT_FIELDS,
    *Monitor.CONFIRMATION_FIELDS,
)


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


@transaction.atomic
def monitors_pause(*, monitor_ids: Sequence[int]) -> int:
    """Stop checking these monitors (admin, dashboard and API alike); returns how many
    were running."""
    return _monitors_enable(monitor_ids=monitor_ids, enabled=False)


@transaction.atomic
def monitors_resume(*, monitor_ids: Sequence[int]) -> int:
    """Check these paused monitors again from now; returns how many were paused."""
    return _monitors_enable(monitor_ids=monitor_ids, enabled=True)


def _monitors_enable(*, monitor_ids: Sequence[int], enabled: bool) -> int:
    # The rows are locked first, so the ids announced are exactly those this changes.
    changing = Monitor.objects.select_for_update().filter(
        pk__in=list(monitor_ids), enabled=not enabled
    )
    ids = list(changing.values_list("pk", flat=True))
    monitors = Monitor.objects.filter(pk__in=ids)
    count = monitors.resume() if enabled else monitors.pause()
    if ids:
        monitors_enabled_changed.send(sender=Monitor, monitor_ids=ids, enabled=enabled)
    return count


def monitors_check_now(*, monitor_ids: Sequence[int]) -> int:
    """Check each enabled monitor now, outside its schedule: "check now" in the admin,
    the dashboard and the API. Returns how many were queued (paused ones and heartbeats
    are not).

    The slot is "now", a moment of its own, so it never collides with a scheduled
    slot; it is published to the probe queue after the surrounding transaction
    commits, and the result shows within seconds.
    """
    # A heartbeat is pinged, not checked: there is nothing to check now.
    rows = Monitor.objects.filter(
        pk__in=monitor_ids, enabled=True, kind__in=Monitor.PROBED_KINDS
    ).values_list("pk", *SPEC_COLUMNS)
    now_ms = to_epoch_ms(timezone.now())
    slots = [Slot(now_ms, pk, spec_encode(values)) for pk, *values in rows]
    publish = probe_batches_publisher(batch_size=settings.SENTINEL_PROBE_BATCH_SIZE)
    transaction.on_commit(lambda: publish(slots))
    return len(slots)
