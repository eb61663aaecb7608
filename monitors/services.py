"""Writes to monitor configuration. Every writer (admin, API, importers, the demo
loader) goes through these so that validation is the same everywhere."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.utils import timezone

from alerting.services import alerts_process
from monitors.dispatch import Slot, probe_batches_publisher, to_ms
from monitors.models import Monitor, Tag
from monitors.probes import TargetPolicy, check_batch, spec_from_monitor
from monitors.probes.loop import probe_loop_run
from monitors.probes.spec import PROBE_COLUMNS, spec_from_row
from monitors.state import StateChange, monitors_apply_results
from telemetry.buffer import buffer_push
from telemetry.records import CheckResult

# What owners may set on a monitor, through the API or the dashboard form (tags and
# enabled are handled apart: they are not plain columns or change the state).
MONITOR_EDITABLE_FIELDS = (
    "name",
    "kind",
    "url",
    "method",
    "headers",
    "body",
    "expected_status_codes",
    "keyword",
    "keyword_mode",
    "interval_seconds",
    "timeout_seconds",
    "confirm_failures",
    "recover_successes",
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


def checks_run_batch(*, slots: Sequence[tuple[int, dt.datetime]]) -> list[StateChange]:
    """Check a batch of slots, store the results, move the monitors' live state.

    One query loads the monitors, the checks run concurrently (each starting at its
    slot), the results go to the Redis buffer in one round trip, and the live state
    is updated in one transaction, then the batch's alert rules are evaluated.
    Returns the status changes.
    Deleted or paused monitors are skipped: their slot no longer stands.
    """
    rows = Monitor.objects.filter(pk__in=[pk for pk, _ in slots], enabled=True).values_list(
        *PROBE_COLUMNS
    )
    specs = {row[0]: spec_from_row(row) for row in rows}
    items = [(specs[pk], scheduled_at) for pk, scheduled_at in slots if pk in specs]
    if not items:
        return []
    if not connection.in_atomic_block:
        # The checks take seconds (a hanging target costs its whole timeout): an idle
        # MySQL connection held by every batch in flight capped the probe threads at
        # max_connections (151 by default). Reconnecting for the state update is cheap.
        connection.close()
    results = probe_loop_run(check_batch(items, policy=TargetPolicy.from_settings()))
    buffer_push(results=results)
    changes = monitors_apply_results(results=results)
    # Alerts are decided where the result is known; deliveries are queued on commit.
    # Should this raise, the alerting sweep still sends down/up alerts within a minute.
    alerts_process(results=results, changes=changes)
    return changes


def check_run_now(*, monitor: Monitor) -> CheckResult:
    """One check of ``monitor`` right now, outside its schedule; nothing is stored."""
    item = (spec_from_monitor(monitor), timezone.now())
    return asyncio.run(
        check_batch([item], policy=TargetPolicy.from_settings(), wait_for_slot=False)
    )[0]


def checks_queue_now(*, monitor_ids: Sequence[int]) -> int:
    """Queue an immediate check of each enabled monitor (the admin's "check now").

    The slot is "now", a moment of its own, so it never collides with a scheduled
    slot; it is published after the surrounding transaction commits.
    """
    ids = list(
        Monitor.objects.filter(pk__in=monitor_ids, enabled=True).values_list("pk", flat=True)
    )
    now_ms = to_ms(timezone.now())
    slots = [Slot(now_ms, pk) for pk in ids]
    publish = probe_batches_publisher(batch_size=settings.SENTINEL_PROBE_BATCH_SIZE)
    transaction.on_commit(lambda: publish(slots))
    return len(slots)
