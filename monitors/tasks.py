"""Thin Celery tasks for the scheduler and the probe fleet (queues: see settings)."""

from __future__ import annotations

from typing import Any

import redis
from celery import Task, shared_task
from celery.exceptions import Reject
from django.db import InterfaceError, OperationalError

from core.regions import LOCAL
from monitors.batch import checks_run_batch, results_accept
from monitors.dispatch import dispatch_due
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
    dispatch_due()


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
    self: Task,
    slots: list[list[int]],
    v: int = 1,
    specs: list[dict[str, Any]] | None = None,
    region: str = LOCAL,
    token: str = "",
) -> None:
    """``slots``: ``[[monitor_id, scheduled_epoch_ms], ...]``; ``v`` and ``specs``: the
    message version and what each slot's check needs (``monitors.slots``); ``region``
    and ``token``: a remote region's batch and the token of its slots
    (``monitors.regions``)."""
    try:
        checks_run_batch(
            slots=message_decode(slots, version=v, specs=specs), region=region, token=token
        )
    except TRANSIENT_ERRORS as exc:
        if self.request.retries >= PROBE_RETRIES:
            # Rejected without requeue: RabbitMQ moves it to the dead-letter queue.
            raise Reject(f"gave up after {PROBE_RETRIES} retries: {exc}", requeue=False) from exc
        raise self.retry(exc=exc, countdown=2) from exc


@shared_task(
    name="monitors.regions.accept_results",
    ignore_result=True,
    # A rerun pushes the same results again; ingest stores each (monitor, slot, region)
    # once.
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(redis.ConnectionError, redis.TimeoutError),
    retry_backoff=True,
    max_retries=PROBE_RETRIES,
)
def regions_accept_results(
    region: str,
    slots: list[list[int]],
    token: str,
    rows: list[Any],
    kinds: dict[str, str] | None = None,
) -> None:
    """A remote region's results (``monitors.batch.results_accept``)."""
    results_accept(region=region, slots=slots, token=token, rows=rows, kinds=kinds)
