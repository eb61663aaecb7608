"""A probe batch, wired end to end: the specs its message carries -> checks -> the buffer.

The only monitors module that writes to the result buffer. A batch of the local
region pushes to it directly; a batch of a remote region sends its results back over
RabbitMQ to the central site's ``results`` queue, where ``results_accept`` checks them
against the slots the region was sent and pushes them (``monitors.regions``).

A probe batch touches no database: what to check comes with the message
(``monitors.slots``), the results go to the Redis buffer (or the results queue), and
ingest, which stores them, moves the monitors' live state.

Results are pushed as their checks finish, not when the batch's slowest check does: a
batch's checks start within one second and most end within it, but a target that hangs
holds its check for the whole timeout, and with 2 % of targets hanging nearly every
batch of 250 has one. Waiting for it held most results back for that long
(``pipeline.result_to_mysql_p50_s`` 5.5 s at 100,000 monitors a minute, of which the
buffer and ingest took 0.6 s). So every ``PUSH_EVERY_SECONDS`` the results finished
since the last push go to the buffer in one round trip (with its retries and spool,
``telemetry.buffer``).

**A batch is checked once, even when RabbitMQ hands it out again.** A probe message is
acknowledged when its batch ends (``acks_late``); a worker that lost its broker
connection meanwhile (RabbitMQ restarted) or died cannot acknowledge it, and RabbitMQ
delivers it again, to this worker or another. So a batch is claimed in Redis under its
task id before its checks start (``SET NX`` with an expiry covering its slowest check),
and each slot whose result reached the buffer is marked done in a set that outlives
the message's expiry and the dispatch journal's republish. The task id is the batch's
own, derived from its region and slots (``monitors.journal.batch_task_id``), so a batch
the dispatch journal publishes again is the same batch here too. A delivery that finds
the batch claimed waits for the claim to be released or to expire (its worker died),
then checks only the slots not marked done: a batch already checked is skipped whole,
one being checked is left to its worker, and the slots a killed worker never finished
are still checked. Without Redis the batch is checked without a claim: a check twice
is better than none. A remote region has no Redis, so its batches are never claimed: a
batch delivered again there is checked again, and ingest stores each (monitor, slot,
region) once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import datetime as dt
import logging
import os
import queue
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis
from celery import current_app
from django.conf import settings
from django.db import connection
from django.utils import timezone

from core.db import database_configured
from core.netpolicy import TargetPolicy
from core.reachability import reachable_log, unreachable_log
from core.redis import redis_client
from core.regions import LOCAL, RESULTS_QUEUE
from core.time import from_epoch_ms, to_epoch_ms
from monitors.models import Monitor
from monitors.probes import ProbeSpec, check_batch, spec_from_monitor
from monitors.probes.loop import probe_loop
from monitors.probes.spec import spec_from_row
from monitors.regions import slots_token_valid
from monitors.slots import PROBE_COLUMNS, Slot, spec_row
from telemetry.buffer import buffer_push
from telemetry.records import CheckResult, wire_rows_check

log = logging.getLogger(__name__)

# How long a finished result may wait for the next push to the buffer. Each push is one
# Redis round trip and one stream entry: a batch of 250 whose slowest check times out
# after 5 s makes about ten entries instead of one, which ingest takes whole.
PUSH_EVERY_SECONDS = 0.5

Item = tuple[ProbeSpec, dt.datetime]

CLAIM_KEY = "sentinel:probes:batch:{}:claim"
DONE_KEY = "sentinel:probes:batch:{}:done"
# A claim outlives the batch's slowest check by this much (the last push, a slow Redis).
CLAIM_MARGIN_SECONDS = 5.0
# A delivery that finds its batch claimed looks again this often.
CLAIM_POLL_SECONDS = 0.25
# The done marks outlive the message's expiry by this much (clocks a little apart).
DONE_MARGIN_SECONDS = 60
CLAIM_WAITS = "probe batches are checked without a claim: a redelivered one is checked again"
CLAIM_RESUMES = "probe batches are claimed again"


RESULTS_TASK = "monitors.regions.accept_results"

Sink = Callable[[Sequence[CheckResult], Mapping[int, str]], None]


def checks_run_batch(
    *,
    slots: Sequence[Slot],
    batch_id: str | None = None,
    region: str = LOCAL,
    token: str = "",
) -> list[CheckResult]:
    """Check a batch of slots and push the results to the buffer as they finish.

    The checks run concurrently, each starting at its slot; what has finished goes to
    the Redis buffer every ``PUSH_EVERY_SECONDS`` (one round trip each) and at the end,
    or, for a batch of a remote ``region``, to the central site over RabbitMQ with the
    batch's slots and ``token`` (``monitors.regions``; never claimed: no Redis there).
    Returns the results of the slots checked here. ``batch_id`` (the probe task's id,
    the same for every delivery of its message) claims the batch, so that a delivery
    again checks only what no delivery before it checked (see the module docstring).
    Slots of a version 1 message carry no spec: see ``_specs_of_old_slots``.
    """
    specs = _specs(slots)
    items = [
        (specs[s.monitor_id], from_epoch_ms(s.scheduled_ms)) for s in slots if s.monitor_id in specs
    ]
    if not items:
        return []
    if region != LOCAL:
        return _check_for_region(slots, items, region=region, token=token)
    claim = BatchClaim.take(batch_id, items) if batch_id else None
    if claim is None:
        return _check_and_push(items, sink=_push)
    try:
        todo = claim.unchecked(items)
        if len(todo) < len(items):
            log.info(
                "probe batch %s delivered again: %d of its %d slots were already checked",
                batch_id,
                len(items) - len(todo),
                len(items),
            )
        return _check_and_push(todo, sink=_push, on_pushed=claim.mark_done) if todo else []
    finally:
        claim.release()


def _check_for_region(
    slots: Sequence[Slot], items: Sequence[Item], *, region: str, token: str
) -> list[CheckResult]:
    if region != settings.SENTINEL_REGION:
        log.warning(
            "a batch of region %r reached a worker of region %r", region, settings.SENTINEL_REGION
        )
    pairs = [[s.monitor_id, s.scheduled_ms] for s in slots]
    return _check_and_push(items, sink=_results_sender(region, pairs, token), region=region)


def _push(results: Sequence[CheckResult], kinds: Mapping[int, str]) -> None:
    buffer_push(results=results, kinds=kinds)


def _results_sender(region: str, pairs: list[list[int]], token: str) -> Sink:
    """Send results to the central site's ``results`` queue, with the batch's slots and
    token (one message per push; none for no results)."""

    def send(results: Sequence[CheckResult], kinds: Mapping[int, str]) -> None:
        if not results:
            return
        current_app.send_task(
            RESULTS_TASK,
            kwargs={
                "region": region,
                "slots": pairs,
                "token": token,
                "rows": [result.to_wire() for result in results],
                "kinds": {str(m): kinds[m] for m in {r.monitor_id for r in results}},
            },
            queue=RESULTS_QUEUE,
            # The results exchange by name: Celery would otherwise publish to the
            # default exchange, which a region's user may not write to (it reaches
            # every queue).
            exchange=RESULTS_QUEUE,
            routing_key=RESULTS_QUEUE,
        )

    return send


def results_accept(
    *,
    region: str,
    slots: Sequence[Sequence[int]],
    token: str,
    rows: Sequence[Any],
    kinds: Mapping[str, str] | None = None,
) -> int:
    """Push a remote region's results to the buffer, those it may store: the token must
    be the one the dispatcher gave the region for ``slots`` (``monitors.regions``), and
    each result's monitor and slot among them, its region ``region``. Returns how many
    were pushed; each refused result is logged with why.

    Rows are checked as ingest checks them (``wire_rows_check``), so a malformed row is
    refused here with its field rather than stored."""
    if not slots_token_valid(region=region, pairs=slots, token=token):
        log.warning(
            "refused %d results of region %r: the token does not match their slots",
            len(rows),
            region,
        )
        return 0
    handed = {(int(m), int(s)) for m, s in slots}
    good, bad = wire_rows_check(rows, oldest_ms=0, newest_ms=2**62)
    for _row, why in bad:
        log.warning("refused a result of region %r: %s", region, why or "not a result")
    results = [CheckResult.from_wire(row) for row in good]
    accepted = [r for r in results if r.region == region and (r.monitor_id, _ms(r)) in handed]
    if len(accepted) != len(results):
        log.warning(
            "refused %d results of region %r for slots it was not sent",
            len(results) - len(accepted),
            region,
        )
    buffer_push(results=accepted, kinds={int(m): k for m, k in (kinds or {}).items()})
    return len(accepted)


def _ms(result: CheckResult) -> int:
    return round(result.scheduled_at.timestamp() * 1000)


@dataclass
class BatchClaim:
    """This worker's claim on a probe batch in Redis, and the batch's done marks."""

    batch_id: str
    token: str
    done_ttl: int  # seconds

    @classmethod
    def take(cls, batch_id: str, items: Sequence[Item]) -> BatchClaim | None:
        """Claim the batch, waiting while another delivery holds it (at most until its
        claim expires); None if Redis does not answer (said once)."""
        now = time.time()
        last_end = max(at.timestamp() + spec.timeout_seconds for spec, at in items)
        ttl = max(last_end - now, 0.0) + CLAIM_MARGIN_SECONDS
        token = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        key = CLAIM_KEY.format(batch_id)
        client = redis_client()
        try:
            while not client.set(key, token, nx=True, px=int(ttl * 1000)):
                time.sleep(CLAIM_POLL_SECONDS)  # its worker checks it, or died: expires
        except redis.RedisError as exc:
            unreachable_log(log, "redis", exc, CLAIM_WAITS)
            return None
        reachable_log(log, "redis", CLAIM_RESUMES)
        # As long as the batch may come again: RabbitMQ's redelivery until its expiry, or
        # the dispatch journal's republish while its slots are worth catching up.
        again = max(
            settings.SENTINEL_PROBE_EXPIRE_SECONDS, settings.SENTINEL_DISPATCH_CATCH_UP_SECONDS
        )
        return cls(batch_id, token, int(ttl) + again + DONE_MARGIN_SECONDS)

    def unchecked(self, items: Sequence[Item]) -> list[Item]:
        """The items whose results no delivery of this batch pushed yet."""
        try:
            done = redis_client().smembers(DONE_KEY.format(self.batch_id))
        except redis.RedisError as exc:
            unreachable_log(log, "redis", exc, CLAIM_WAITS)
            return list(items)
        return [item for item in items if _mark(item[0].monitor_id, item[1]) not in done]

    def mark_done(self, results: Iterable[CheckResult]) -> None:
        """Mark the slots of ``results`` done (their results are in the buffer, or its
        spool); without Redis, nothing is marked and a delivery again checks them."""
        marks = [_mark(r.monitor_id, r.scheduled_at) for r in results]
        if not marks:
            return
        key = DONE_KEY.format(self.batch_id)
        pipe = redis_client().pipeline(transaction=False)
        pipe.sadd(key, *marks)
        pipe.expire(key, self.done_ttl)
        try:
            pipe.execute()
        except redis.RedisError as exc:
            unreachable_log(log, "redis", exc, CLAIM_WAITS)

    def release(self) -> None:
        """Release the claim if it is still this worker's (it may have expired)."""
        with contextlib.suppress(redis.RedisError):  # it expires by itself
            redis_client().eval(_RELEASE, 1, CLAIM_KEY.format(self.batch_id), self.token)


_RELEASE = (
    "if redis.call('GET', KEYS[1]) == ARGV[1] then "
    "return redis.call('DEL', KEYS[1]) else return 0 end"
)


def _mark(monitor_id: int, scheduled_at: dt.datetime) -> bytes:
    return f"{monitor_id}:{to_epoch_ms(scheduled_at)}".encode()


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


def _check_and_push(
    items: Sequence[Item],
    *,
    sink: Sink,
    region: str = LOCAL,
    on_pushed: Callable[[list[CheckResult]], None] | None = None,
) -> list[CheckResult]:
    """Run the checks on the process's probe loop and hand what has finished to ``sink``
    from this thread, so the loop never waits for Redis or RabbitMQ; ``on_pushed`` gets
    each push's results. A remote ``region``'s results are stamped with it."""
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
            pushed = _take(finished, region)
            sink(pushed, kinds)
            if on_pushed is not None:
                on_pushed(pushed)
    finally:
        checking.cancel()  # done by now, unless a push raised: then nobody takes them
    results = checking.result()
    return results if region == LOCAL else [_in_region(r, region) for r in results]


def _take(finished: queue.SimpleQueue[CheckResult], region: str) -> list[CheckResult]:
    results = []
    while not finished.empty():
        results.append(finished.get_nowait())
    return results if region == LOCAL else [_in_region(r, region) for r in results]


def _in_region(result: CheckResult, region: str) -> CheckResult:
    return dataclasses.replace(result, region=region)


def check_run_now(*, monitor: Monitor) -> CheckResult:
    """One check of ``monitor`` right now, outside its schedule; nothing is stored."""
    item = (spec_from_monitor(monitor), timezone.now())
    return asyncio.run(
        check_batch([item], policy=TargetPolicy.from_settings(), wait_for_slot=False)
    )[0]
