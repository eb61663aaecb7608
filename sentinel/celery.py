"""The Celery app every worker, Beat and Flower process runs.

RabbitMQ away is said once (``core.reachability``): Celery's own lines for a lost
connection and for each attempt to reconnect (a line every few seconds while it is
away, an error each) become the one line, and its "Connected to" says it is back.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from celery import Celery, signals
from redis import RedisError

from core.reachability import BROKER_ERRORS, reachable_log, unreachable_log
from core.redis import persistence_warning

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sentinel.settings")

logger = logging.getLogger(__name__)

app = Celery("sentinel")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


# Celery's lines that say the broker cannot be reached (consumer and Beat), and the one
# that says a connection was made.
BROKER_AWAY_LINES = (
    "consumer: Connection to broker lost",
    "consumer: Cannot connect to",
    "beat: Connection error",
)
BROKER_BACK_LINE = "Connected to "
WHILE_BROKER_AWAY = "tasks wait in RabbitMQ or in Beat; this process reconnects by itself"
BROKER_LOGGERS = (
    "celery.worker.consumer.consumer",
    "celery.worker.consumer.connection",
    "celery.beat",
)


class BrokerLines(logging.Filter):
    """Turns Celery's lines for RabbitMQ away into ``core.reachability``'s one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if text.startswith(BROKER_AWAY_LINES):
            error = next((a for a in record.args or () if isinstance(a, BaseException)), None)
            unreachable_log(logger, "broker", error or text, WHILE_BROKER_AWAY)
            return False
        if text.startswith(BROKER_BACK_LINE):
            reachable_log(logger, "broker", "tasks flow again")
        return True


for _name in BROKER_LOGGERS:
    logging.getLogger(_name).addFilter(BrokerLines())

# Whether this worker still has to declare the queues (RabbitMQ was away at start).
_queues_pending = False


@signals.worker_init.connect
def declare_queues(**kwargs: Any) -> None:
    """Declare every queue in CELERY_TASK_QUEUES, including ``dead``, which no
    worker consumes: without it, dead-lettered messages would be dropped. RabbitMQ away
    at start: said once, and done once the worker is connected."""
    from django.conf import settings

    if settings.SENTINEL_REMOTE_REGION:
        # A remote region's RabbitMQ user may declare nothing (monitors.regions); the
        # central site's workers declare every region's queue, and it has no Redis.
        _warn_without_icmp()
        return
    _declare_queues()
    _warn_without_redis_persistence()
    _warn_without_icmp()


@signals.worker_ready.connect
def declare_queues_when_connected(**kwargs: Any) -> None:
    if _queues_pending:
        _declare_queues()


def _declare_queues() -> None:
    global _queues_pending
    from core.broker import broker_queues_ensure

    try:
        notes = broker_queues_ensure(app=app)
    except BROKER_ERRORS as exc:
        _queues_pending = True
        unreachable_log(logger, "broker", exc, WHILE_BROKER_AWAY)
        return
    _queues_pending = False
    for note in notes:
        logger.warning(note)


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
