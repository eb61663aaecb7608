"""What alerting does when monitors sends news (``monitors.signals``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.dispatch import receiver

from alerting.services import alerts_process
from monitors.signals import results_applied
from monitors.state import StateChange
from telemetry.records import CheckResult


@receiver(results_applied, dispatch_uid="alerting-results-applied")
def results_applied_alert(
    *,
    results: Sequence[CheckResult],
    changes: Sequence[StateChange],
    **_: Any,
) -> None:
    """Evaluate the batch's alert rules and queue their notifications."""
    alerts_process(results=results, changes=changes)
