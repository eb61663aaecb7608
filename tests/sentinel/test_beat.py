from __future__ import annotations

import datetime as dt
import logging

import pytest
from celery import Celery
from django.db import connection
from django.utils import timezone
from django_celery_beat import schedulers
from django_celery_beat.models import PeriodicTasks
from django_celery_beat.schedulers import DatabaseScheduler

from sentinel.beat import Scheduler
from sentinel.celery import app
from tests.telemetry.conftest import session_status


def commits_of(scheduler: DatabaseScheduler, ticks: int) -> tuple[list[bool], int]:
    before = session_status("Com_commit")
    changed = [scheduler.schedule_changed() for _ in range(ticks)]
    return changed, session_status("Com_commit") - before


# Commits are what is counted, so outside the test transaction (autocommit, as Beat runs).
@pytest.mark.django_db(transaction=True)
def test_beat_sees_a_schedule_change_without_committing_on_every_tick():
    changed_at = timezone.now().replace(microsecond=0)
    PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": changed_at})
    library, ours = DatabaseScheduler(app=app, lazy=True), Scheduler(app=app, lazy=True)
    for scheduler in (library, ours):
        scheduler.schedule_changed()  # the first look only remembers the counter

    assert commits_of(library, 5) == ([False] * 5, 5)  # what it did: a COMMIT a tick
    assert commits_of(ours, 5) == ([False] * 5, 0)
    # A change a second later (the column keeps whole seconds).
    PeriodicTasks.objects.filter(ident=1).update(last_update=changed_at + dt.timedelta(seconds=1))
    assert commits_of(ours, 1) == ([True], 0)


def warnings_and_tracebacks(caplog):
    said = [r for r in caplog.records if r.levelno >= logging.WARNING]
    return [r.getMessage() for r in said], [r for r in caplog.records if r.exc_info]


@pytest.mark.django_db(transaction=True)  # Beat runs in autocommit
def test_beat_goes_on_through_a_mysql_outage_saying_it_once(caplog, monkeypatch):
    scheduler = Scheduler(app=app, lazy=False)
    port = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = "1"
    # Every tick re-reads the whole schedule (the library does it every five minutes).
    monkeypatch.setattr(schedulers, "SCHEDULE_SYNC_MAX_INTERVAL", 0)
    try:
        with caplog.at_level(logging.INFO):
            for _ in range(3):
                scheduler._dirty.add(next(iter(scheduler.schedule)))  # a run to write
                scheduler.tick()
                scheduler.sync()
    finally:
        connection.close()
        connection.settings_dict["PORT"] = port
    with caplog.at_level(logging.INFO, logger="sentinel.beat"):
        scheduler.schedule_changed()

    said, tracebacks = warnings_and_tracebacks(caplog)
    assert len(said) == 1 and said[0].startswith("MySQL is unreachable at mysql://")
    assert said[0].endswith("Beat keeps its schedule and asks again")
    assert tracebacks == []
    assert scheduler.schedule  # the schedule it had
    assert caplog.records[-1].getMessage().endswith("is back; Beat goes on")
    assert not scheduler._dirty  # the runs it could not write are written now


@pytest.mark.django_db(transaction=True)
def test_beat_says_once_that_rabbitmq_is_away_not_a_traceback_per_task(
    caplog, settings, monkeypatch
):
    away_url = "amqp://guest:guest@127.0.0.1:1//"  # nothing listens there
    settings.CELERY_BROKER_URL = away_url
    monkeypatch.setenv("CELERY_BROKER_URL", away_url)  # Celery reads it before its settings
    settings.CELERY_TASK_PUBLISH_RETRY = False
    settings.CELERY_BROKER_CONNECTION_TIMEOUT = 0.5
    away = Celery("sentinel-beat-test")
    away.config_from_object("django.conf:settings", namespace="CELERY")
    scheduler = Scheduler(app=away, lazy=False)

    with caplog.at_level(logging.INFO):
        for entry in scheduler.schedule.values():
            scheduler.apply_entry(entry)
            scheduler.apply_entry(entry)

    said, tracebacks = warnings_and_tracebacks(caplog)
    assert len(scheduler.schedule) >= 2 and len(said) == 1
    assert said[0].startswith("RabbitMQ is unreachable at amqp://guest:***@127.0.0.1:1//")
    assert tracebacks == []
