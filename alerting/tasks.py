"""Thin Celery tasks for alerting (queue ``alerts`` via CELERY_TASK_ROUTES)."""

from __future__ import annotations

import logging

from celery import Task, shared_task

from alerting import services
from alerting.services.notifications import delivery_queue_register
from core.reachability import BROKER_ERRORS, OutageSaid, unreachable_log

logger = logging.getLogger(__name__)

# A delivery that met MySQL away is sent again after this long (its rows wait there).
DELIVERY_AGAIN_SECONDS = 10
DELIVERY_WAITS = f"deliveries are tried again every {DELIVERY_AGAIN_SECONDS} s; none is lost"
RETRY_LOST = "the alerting sweep queues the deliveries to try again when it is back"
SWEEP_WAITS = "the alerting sweep runs again next minute"


@shared_task(
    name="alerting.deliver_many",
    ignore_result=True,
    # Safe to rerun: the claim in notifications_deliver makes a redelivery a no-op.
    acks_late=True,
    reject_on_worker_lost=True,
)
def deliver_many(notification_ids: list[int]) -> None:
    retries: dict[int, list[int]] = {}
    with OutageSaid(logger, DELIVERY_WAITS, back="deliveries go on") as work:
        retries = services.notifications_deliver(notification_ids=notification_ids)
    if work.away:
        retries = {DELIVERY_AGAIN_SECONDS: list(notification_ids), **retries}
    # Transient failures only, each batch with its backoff; the claim keeps a retry that
    # arrives twice (this task redelivered after queueing it) from sending twice.
    try:
        for countdown, ids in retries.items():
            deliver_many.apply_async((ids,), countdown=countdown)
    except BROKER_ERRORS as exc:
        # Their rows stay pending or retrying in MySQL: the sweep queues them again.
        unreachable_log(logger, "broker", exc, RETRY_LOST)


@shared_task(
    name="alerting.deliver",
    bind=True,
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,
)
def deliver(self: Task, notification_id: int) -> None:
    """One notification: what earlier versions queued; kept for messages in flight."""
    retry_in = services.notification_deliver(notification_id=notification_id)
    if retry_in is not None:
        raise self.retry(countdown=retry_in)


@shared_task(name="alerting.sweep", ignore_result=True)
def sweep() -> None:
    with OutageSaid(logger, SWEEP_WAITS, back="the alerting sweep goes on"):
        services.alerts_sweep()


def deliveries_queue(notification_ids: list[int]) -> None:
    """Queue one delivery task for these notifications (``deliver_many``)."""
    deliver_many.delay(notification_ids)


delivery_queue_register(deliveries_queue)
