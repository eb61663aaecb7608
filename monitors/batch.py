"""A probe batch, wired end to end: the specs its message carries -> checks -> the buffer.

The only monitors module that writes to the result buffer. A probe batch touches no
database: what to check comes with the message (``monitors.slots``), the results go to
the Redis buffer, and ingest, which stores them, moves the monitors' live state.

Results are pushed as their checks finish, not when the batch's slowest check does: a
batch's checks start within one second and most end within it, but a target that hangs
holds its check for the whole timeout, and with 2 % of targets hanging nearly every
batch of 250 has one. Waiting for it held most results back for that long
(``pipeline.result_to_mysql_p50_s`` 5.5 s at 100,000 monitors a minute, of which the
buffer and ingest took 0.6 s). So every ``PUSH_EVERY_SECONDS`` the results finished
since the last push go to the buffer in one round trip (with its retries and spool,
``telemetry.buffer``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import logging
import queue
from collections.abc import Sequence

from django.db import connection
from django.utils import timezone

from core.db import database_configured
from core.netpolicy import TargetPolicy
from core.time import from_epoch_ms
from monitors.models import Monitor
from monitors.probes import ProbeSpec, check_batch, spec_from_monitor
from monitors.probes.loop import probe_loop
from monitors.probes.spec import spec_from_row
from monitors.slots import PROBE_COLUMNS, Slot, spec_row
from telemetry.buffer import buffer_push
from telemetry.records import CheckResult

log = logging.getLogger(__name__)

# How long a finished result may wait for the next push to the buffer. Each push is one
# Redis round trip and one stream entry: a batch of 250 whose slowest check times out
# after 5 s makes about ten entries instead of one, which ingest takes whole.
PUSH_EVERY_SECONDS = 0.5

Item = tuple[ProbeSpec, dt.datetime]


def checks_run_batch(*, slots: Sequence[Slot]) -> list[CheckResult]:
    """Check a batch of slots and push the results to the buffer as they finish.

    The checks run concurrently, each starting at its slot; what has finished goes to
    the Redis buffer every ``PUSH_EVERY_SECONDS`` (one round trip each) and at the end.
    Returns every result. Slots of a version 1 message carry no spec: see
    ``_specs_of_old_slots``.
    """
    specs = _specs(slots)
    items = [
        (specs[s.monitor_id], from_epoch_ms(s.scheduled_ms)) for s in slots if s.monitor_id in specs
    ]
    if not items:
        return []
    return _check_and_push(items)


def _specs(slots: Sequence[Slot]) -> dict[int, ProbeSpec]:
    specs: dict[int, ProbeSpec] = {}
    for slot in slots:
        if slot.spec is not None:
            specs[slot.monitor_id] = spec_from_row(spec_row(slot.monitor_id, slot.spec))
    old = [slot.monitor_id for slot in slots if slot.spec is None]
    if old:
        specs.update(_specs_of_old_slots(old))
    return specs


def _specs_of_old_slots(monitor_ids: list[int]) -> dict[int, ProbeSpec]:
    """The specs of slots that came in a version 1 message (queued by a dispatcher
    older than this worker, during an upgrade), which carried none.

    With a database configured they are read from it, as version 1 workers did
    (deleted and paused monitors are skipped: their slot no longer stands). A probe
    worker without one drops the slots with one log line: their monitors' next slots,
    sent by the new dispatcher, go ahead as planned, so each loses one check.
    """
    if not database_configured():
        log.warning(
            "dropped %d slots of an old-form probe message: it carries no specs and this "
            "worker has no database to read them from",
            len(monitor_ids),
        )
        return {}
    rows = Monitor.objects.filter(pk__in=monitor_ids, enabled=True).values_list(*PROBE_COLUMNS)
    specs = {row[0]: spec_from_row(row) for row in rows}
    if not connection.in_atomic_block:
        # The checks take seconds: an idle connection held by every batch in flight
        # capped the probe threads at max_connections (151 by default).
        connection.close()
    return specs


def _check_and_push(items: Sequence[Item]) -> list[CheckResult]:
    """Run the checks on the process's probe loop and push what has finished from this
    thread, so the loop never waits for Redis."""
    finished: queue.SimpleQueue[CheckResult] = queue.SimpleQueue()
    kinds = {spec.monitor_id: spec.kind for spec, _ in items}
    checking = asyncio.run_coroutine_threadsafe(
        check_batch(items, policy=TargetPolicy.from_settings(), on_result=finished.put),
        probe_loop(),
    )
    try:
        done = False
        while not done:
            done = bool(concurrent.futures.wait([checking], timeout=PUSH_EVERY_SECONDS).done)
            buffer_push(results=_take(finished), kinds=kinds)
    finally:
        checking.cancel()  # done by now, unless a push raised: then nobody takes them
    return checking.result()


def _take(finished: queue.SimpleQueue[CheckResult]) -> list[CheckResult]:
    results = []
    while not finished.empty():
        results.append(finished.get_nowait())
    return results


def check_run_now(*, monitor: Monitor) -> CheckResult:
    """One check of ``monitor`` right now, outside its schedule; nothing is stored."""
    item = (spec_from_monitor(monitor), timezone.now())
    return asyncio.run(
        check_batch([item], policy=TargetPolicy.from_settings(), wait_for_slot=False)
    )[0]
