"""Thin Celery tasks for the scheduler and the probe fleet (queues: see settings)."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import redis
from celery import Task, shared_task
from celery.exceptions import Reject
from django.db import InterfaceError, OperationalError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from core.reachability import BROKER_ERRORS, reachable_log, unreachable_log, unreachable_service
from core.regions import LOCAL
from monitors.batch import checks_run_batch, results_accept
from monitors.dispatch import dispatch_due
from monitors.heartbeats import heartbeats_missed
from monitors.slots import message_decode

logger = logging.getLogger(__name__)

# Services that may come back in seconds: worth a retry, not a dead letter yet.
TRANSIENT_ERRORS = (redis.ConnectionError, redis.TimeoutError, OperationalError, InterfaceError)
PROBE_RETRIES = 2
# Waits between the attempts of a dispatch that met MySQL or RabbitMQ away, then the
# last one again, until the dispatch's own expiry (50 s after its minute began): the
# next minute's dispatch takes over from there. Each attempt that gets through hands
# out the slots missed meanwhile (monitors.dispatch, catching up).
DISPATCH_RETRY_SECONDS = (1, 2, 4, 8, 15)
# Beat's dispatch expires this long after it is sent (monitors/migrations/0003).
DISPATCH_EXPIRES_SECONDS = 50
DISPATCH_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    *BROKER_ERRORS,
)
DISPATCH_WAITS = "the dispatch is tried again and catches up the slots missed meanwhile"
DISPATCH_RESUMES = "the dispatch resumes and catches up the slots it missed"


@shared_task(
    bind=True,
    name="monitors.dispatch.due",
    ignore_result=True,
    # A rerun is safe: slots are claimed with a conditional UPDATE, so a redelivered
    # dispatch only finds what is still unclaimed.
    acks_late=True,
    reject_on_worker_lost=True,
)
def dispatch_due_task(self: Task, attempt: int = 0) -> None:
    """The per-minute dispatch; ``attempt``: how many tries of this minute failed."""
    try:
        try:
            dispatch_due()
        finally:
            # The heartbeat pass rides the same minute, whatever became of the dispatch
            # (and is tried again with it when MySQL or RabbitMQ was away).
            heartbeats_missed()
    except DISPATCH_ERRORS as exc:
        _dispatch_again(self, attempt=attempt, exc=exc)
        return
    for service in ("database", "broker"):
        reachable_log(logger, service, DISPATCH_RESUMES)


def _dispatch_again(task: Task, *, attempt: int, exc: BaseException) -> None:
    """Say once that the service behind ``exc`` is away and send this dispatch again
    after the next wait, unless that is past its expiry. Not Celery's own retry, which
    logs a line at every attempt."""
    away = unreachable_service(exc) or ("broker" if isinstance(exc, BROKER_ERRORS) else "database")
    unreachable_log(logger, away, exc, DISPATCH_WAITS)
    wait = DISPATCH_RETRY_SECONDS[min(attempt, len(DISPATCH_RETRY_SECONDS) - 1)]
    now = timezone.now()
    # A dispatch sent without an expiry (by hand) is tried for as long as Beat's are.
    ends = _expiry(task.request.expires) or now + dt.timedelta(seconds=DISPATCH_EXPIRES_SECONDS)
    if ends <= now + dt.timedelta(seconds=wait):
        return  # the next minute's dispatch is on its way
    try:
        task.apply_async(kwargs={"attempt": attempt + 1}, countdown=wait, expires=ends)
    except BROKER_ERRORS as publish_error:
        unreachable_log(logger, "broker", publish_error, DISPATCH_WAITS)


def _expiry(expires: object) -> dt.datetime | None:
    """A request's expiry as Celery hands it over (an ISO 8601 string, or None)."""
    if isinstance(expires, dt.datetime):
        return expires
    return parse_datetime(expires) if isinstance(expires, str) else None


@shared_task(
    bind=True,
    name="monitors.probes.check_batch",
    ignore_result=True,
    # A delivery again (RabbitMQ restarted, a worker died) checks only the slots no
    # delivery before it checked (a claim per batch in Redis, monitors.batch); results
    # carry their slot, so storing one twice is a no-op in ingest.
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
            slots=message_decode(slots, version=v, specs=specs),
            batch_id=self.request.id,
            region=region,
            token=token,
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
