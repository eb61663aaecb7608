"""Thin Celery tasks of the telemetry app; routes are in sentinel/settings.py."""

from __future__ import annotations

from celery import shared_task

from telemetry.ingest import ingest_periodic
from telemetry.partitions import partitions_apply


# Not acks_late: the task holds no state of its own. Results stay pending in the
# Redis stream until stored, so a worker killed mid-drain loses nothing and the next
# run (same consumer) takes them again.
@shared_task(name="telemetry.ingest.drain", ignore_result=True)
def drain_buffer() -> None:
    ingest_periodic()


@shared_task(name="telemetry.maintenance.partitions", ignore_result=True)
def maintain_partitions() -> None:
    partitions_apply()
