"""What monitors does when telemetry sends news (``telemetry.signals``)."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from monitors.models import Monitor
from monitors.signals import results_applied
from monitors.state import monitors_apply_results
from telemetry.records import CheckResult, WireRow
from telemetry.signals import results_stored


@receiver(results_stored, dispatch_uid="monitors-results-stored")
def results_stored_apply(*, rows: list[WireRow], **_: Any) -> None:
    """Move the live state (and incidents) by the batch ingest just stored, in its
    transaction, then tell the apps above (alerting) with ``results_applied``."""
    results = [CheckResult.from_wire(row) for row in rows]
    changes = monitors_apply_results(results=results)
    results_applied.send(sender=Monitor, results=results, changes=changes)
