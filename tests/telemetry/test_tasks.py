from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from django.core.management import call_command
from django_celery_beat.models import PeriodicTask

from sentinel.celery import app
from telemetry import tasks


@pytest.mark.parametrize(
    ("task", "queue"),
    [(tasks.drain_buffer, "ingest"), (tasks.maintain_partitions, "maintenance")],
)
def test_the_tasks_go_to_their_queues(task, queue):
    assert task.ignore_result is True
    assert app.amqp.router.route({}, task.name)["queue"].name == queue


@pytest.mark.django_db
def test_the_beat_schedule_drains_every_few_seconds_and_maintains_hourly():
    migration = importlib.import_module("telemetry.migrations.0003_periodic_tasks")
    PeriodicTask.objects.filter(task__startswith="telemetry.").delete()

    migration.install(apps, None)
    migration.install(apps, None)  # idempotent

    drain = PeriodicTask.objects.get(task="telemetry.ingest.drain")
    maintenance = PeriodicTask.objects.get(task="telemetry.maintenance.partitions")
    assert (drain.interval.every, drain.interval.period, drain.expire_seconds) == (5, "seconds", 5)
    assert (maintenance.interval.every, maintenance.interval.period) == (1, "hours")


@pytest.mark.django_db
def test_the_partitions_command_applies_nothing_when_up_to_date(capsys):
    call_command("partitions", "--apply")

    out = capsys.readouterr().out
    assert out.splitlines() == [
        "check_result: up to date",
        "check_rollup_hourly: up to date",
        "check_rollup_daily: up to date",
        "heartbeat_ping: up to date",
    ]
