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

**A batch is checked once, even when RabbitMQ hands it out again.** A probe message is
acknowledged when its batch ends (``acks_late``); a worker that lost its broker
connection meanwhile (RabbitMQ restarted) or died cannot acknowledge it, and RabbitMQ
delivers it again, to this worker or another. So a batch is claimed in Redis under its
task id before its checks start (``SET NX`` with an expiry covering its slowest check),
and each slot whose result reached the buffer is marked done in a set that outlives
the message's expiry. A delivery that finds the batch claimed waits for the claim to
be released or to expire (its worker died), then checks only the slots not marked
done: a batch already checked is skipped whole, one being checked is left to its
worker, and the slots a killed worker never finished are still checked. Without Redis
the batch is checked without a claim: a check twice is better than none.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import logging
import os
import queue
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import redis
from django.conf import settings
from django.db import connection
from django.utils import timezone

from core.db import database_configured
from core.netpolicy import TargetPolicy
from core.reachability import reachable_log, unreachable_log
from core.redis import redis_client
from core.time import from_epoch_ms, to_epoch_ms
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


def checks_run_batch(*, slots: Sequence[Slot], batch_id: str | None = None) -> list[CheckResult]:
    """Check a batch of slots and push the results to the buffer as they finish.

    The checks run concurrently, each starting at its slot; what has finished goes to
    the Redis buffer every ``PUSH_EVERY_SECONDS`` (one round trip each) and at the end.
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
    claim = BatchClaim.take(batch_id, items) if batch_id else None
    if claim is None:
        return _check_and_push(items)
    try:
        todo = claim.unchecked(items)
        if len(todo) < len(items):
            log.info(
                "probe batch %s delivered again: %d of its %d slots were already checked",
                batch_id,
                len(items) - len(todo),
                len(items),
            )
        return _check_and_push(todo, on_pushed=claim.mark_done) if todo else []
    finally:
        claim.release()


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
        expire = settings.SENTINEL_PROBE_EXPIRE_SECONDS + DONE_MARGIN_SECONDS
        return cls(batch_id, token, int(ttl) + expire)

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
    items: Sequence[Item], *, on_pushed: Callable[[list[CheckResult]], None] | None = None
) -> list[CheckResult]:
    """Run the checks on the process's probe loop and push what has finished from this
    thread, so the loop never waits for Redis; ``on_pushed`` gets each push's results."""
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
            pushed = _take(finished)
            buffer_push(results=pushed, kinds=kinds)
            if on_pushed is not None:
                on_pushed(pushed)
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
