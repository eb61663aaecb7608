"""The Celery app every worker, Beat and Flower process runs."""

from __future__ import annotations

import logging
import os
from typing import Any

from celery import Celery, signals
from redis import RedisError

from core.redis import persistence_warning

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sentinel.settings")

logger = logging.getLogger(__name__)

app = Celery("sentinel")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_init.connect
def declare_queues(**kwargs: Any) -> None:
    """Declare every queue in CELERY_TASK_QUEUES, including ``dead``, which no
    worker consumes: without it, dead-lettered messages would be dropped."""
    from django.conf import settings

    from core.broker import broker_queues_ensure

    if settings.SENTINEL_REMOTE_REGION:
        # A remote region's RabbitMQ user may declare nothing (monitors.regions); the
        # central site's workers declare every region's queue, and it has no Redis.
        return
    for note in broker_queues_ensure(app=app):
        logger.warning(note)
    _warn_without_redis_persistence()
    _warn_without_icmp()


def _warn_without_redis_persistence() -> None:
    """Once per worker start: a Redis that keeps nothing on disk loses the buffered
    results when it restarts (the spool covers Redis being away, not that)."""
    try:
        warning = persistence_warning()
    except RedisError:
        return  # said elsewhere, once, by whoever needs Redis first
    if warning:
        logger.warning(warning)


def _warn_without_icmp() -> None:
    """Once per worker start, as the sentinel.W001 system check says it to manage.py:
    a probe worker that cannot open an ICMP socket fails every ping check."""
    from monitors.probes.ping import icmp_unavailable

    problem = icmp_unavailable()
    if problem:
        logger.warning("Ping monitors will fail on this worker: %s.", problem)
