"""The Celery app every worker, Beat and Flower process runs."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sentinel.settings")

app = Celery("sentinel")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_ready.connect
def declare_queues(**kwargs: Any) -> None:
    """Declare every queue in CELERY_TASK_QUEUES, including ``dead``, which no
    worker consumes: without it, dead-lettered messages would be dropped."""
    with app.connection_for_write() as conn:
        channel = conn.default_channel
        for queue in app.amqp.queues.values():
            queue.bind(channel).declare()
