"""A probe batch: check -> buffer. The live state, incidents and alerts follow where
ingest stores the results (``monitors.receivers``), not here.

The only monitors module that writes to the result buffer.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence

from django.db import connection
from django.utils import timezone

from core.netpolicy import TargetPolicy
from monitors.models import Monitor
from monitors.probes import check_batch, spec_from_monitor
from monitors.probes.loop import probe_loop_run
from monitors.probes.spec import PROBE_COLUMNS, spec_from_row
from telemetry.buffer import buffer_push
from telemetry.records import CheckResult


def checks_run_batch(*, slots: Sequence[tuple[int, dt.datetime]]) -> list[CheckResult]:
    """Check a batch of slots and push the results to the Redis buffer; returns them.

    One query loads the monitors, the checks run concurrently (each starting at its
    slot), the results go to the Redis buffer in one round trip. Deleted or paused
    monitors are skipped: their slot no longer stands.
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
        # max_connections (151 by default).
        connection.close()
    results = probe_loop_run(check_batch(items, policy=TargetPolicy.from_settings()))
    buffer_push(results=results, kinds={pk: spec.kind for pk, spec in specs.items()})
    return results


def check_run_now(*, monitor: Monitor) -> CheckResult:
    """One check of ``monitor`` right now, outside its schedule; nothing is stored."""
    item = (spec_from_monitor(monitor), timezone.now())
    return asyncio.run(
        check_batch([item], policy=TargetPolicy.from_settings(), wait_for_slot=False)
    )[0]
