"""Thin Celery tasks for alerting (queue ``alerts`` via CELERY_TASK_ROUTES)."""

from __future__ import annotations

from celery import Task, shared_task
from django.conf import settings

from alerting import services


@shared_task(
    name="alerting.deliver",
    bind=True,
    ignore_result=True,
    # Safe to rerun: the claim in notification_deliver makes a redelivery a no-op.
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,
)
def deliver(self: Task, notification_id: int) -> None:
    final = self.request.retries >= settings.SENTINEL_NOTIFY_MAX_RETRIES
    retry_in = services.notification_deliver(notification_id=notification_id, final_attempt=final)
    if retry_in is not None:
        raise self.retry(countdown=retry_in)


@shared_task(name="alerting.sweep", ignore_result=True)
def sweep() -> None:
    services.alerts_sweep()
