"""Thin Celery tasks for the scheduler and the probe fleet (queues: see settings)."""

from __future__ import annotations

from typing import Any

import redis
from celery import Task, shared_task
from celery.exceptions import Reject
from django.db import InterfaceError, OperationalError

from monitors.batch import checks_run_batch
from monitors.dispatch import dispatch_due
from monitors.heartbeats import heartbeats_missed
from monitors.slots import message_decode

# Services that may come back in seconds: worth a retry, not a dead letter yet.
TRANSIENT_ERRORS = (redis.ConnectionError, redis.TimeoutError, OperationalError, InterfaceError)
PROBE_RETRIES = 2


@shared_task(
    name="monitors.dispatch.due",
    ignore_result=True,
    # A rerun is safe: slots are claimed with a conditional UPDATE, so a redelivered
    # dispatch only finds what is still unclaimed.
    acks_late=True,
    reject_on_worker_lost=True,
)
def dispatch_due_task() -> None:
    try:
        dispatch_due()
    finally:
        # The heartbeat pass rides the same minute, whatever became of the dispatch.
        heartbeats_missed()


@shared_task(
    bind=True,
    name="monitors.probes.check_batch",
    ignore_result=True,
    # A rerun re-checks the batch; results carry their slot, so storing them twice
    # is a no-op in ingest (and for the live state ingest moves).
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=PROBE_RETRIES,
)
def probe_check_batch(
    self: Task, slots: list[list[int]], v: int = 1, specs: list[dict[str, Any]] | None = None
) -> None:
    """``slots``: ``[[monitor_id, scheduled_epoch_ms], ...]``; ``v`` and ``specs``: the
    message version and what each slot's check needs (``monitors.slots``)."""
    try:
        checks_run_batch(slots=message_decode(slots, version=v, specs=specs))
    except TRANSIENT_ERRORS as exc:
        if self.request.retries >= PROBE_RETRIES:
            # Rejected without requeue: RabbitMQ moves it to the dead-letter queue.
            raise Reject(f"gave up after {PROBE_RETRIES} retries: {exc}", requeue=False) from exc
        raise self.retry(exc=exc, countdown=2) from exc
