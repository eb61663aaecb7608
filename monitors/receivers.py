"""What monitors does when telemetry sends news (``telemetry.signals``)."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from monitors.heartbeats import heartbeats_pings_apply
from monitors.models import Monitor
from monitors.signals import results_applied
from monitors.state import monitors_apply_results
from telemetry.pings import PingRow
from telemetry.records import CheckResult, WireRow
from telemetry.signals import pings_stored, results_stored


@receiver(results_stored, dispatch_uid="monitors-results-stored")
def results_stored_apply(*, rows: list[WireRow], **_: Any) -> None:
    """Move the live state (and incidents) by the batch ingest just stored, in its
    transaction, then tell the apps above (alerting) with ``results_applied``."""
    results = [CheckResult.from_wire(row) for row in rows]
    changes = monitors_apply_results(results=results)
    results_applied.send(sender=Monitor, results=results, changes=changes)


@receiver(pings_stored, dispatch_uid="monitors-pings-stored")
def pings_stored_apply(*, pings: list[PingRow], **_: Any) -> None:
    """Resume paused heartbeats that pinged and move deadlines, in ingest's transaction
    and before the pings' results are applied (``monitors.heartbeats``)."""
    heartbeats_pings_apply(pings=pings)
