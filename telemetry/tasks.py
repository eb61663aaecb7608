"""Thin Celery tasks of the telemetry app; routes are in sentinel/settings.py."""

from __future__ import annotations

import logging

from celery import shared_task

from core.reachability import OutageSaid
from telemetry.ingest import ingest_periodic
from telemetry.partitions import partitions_apply

logger = logging.getLogger(__name__)

PARTITIONS_WAIT = "partitions exist days ahead; the next hourly run maintains them"


# Not acks_late: the task holds no state of its own. Results stay pending in the
# Redis stream until stored, so a worker killed mid-drain loses nothing and the next
# run (same consumer) takes them again.
@shared_task(name="telemetry.ingest.drain", ignore_result=True)
def drain_buffer() -> None:
    ingest_periodic()


@shared_task(name="telemetry.maintenance.partitions", ignore_result=True)
def maintain_partitions() -> None:
    with OutageSaid(logger, PARTITIONS_WAIT, back="partition maintenance goes on"):
        partitions_apply()
