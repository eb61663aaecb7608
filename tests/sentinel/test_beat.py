from __future__ import annotations

import dataclasses
import datetime as dt
import logging

import pytest
from celery import Celery
from django.db import connection
from django.utils import timezone
from django_celery_beat import schedulers
from django_celery_beat.models import CrontabSchedule, PeriodicTask, PeriodicTasks
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


DISPATCH_ENTRY = "monitors: dispatch due checks"


@pytest.fixture
def dispatch_entry() -> str:
    """The per-minute dispatch as migration monitors 0003 installs it (a transactional
    test before this one may have flushed it)."""
    every_minute, _ = CrontabSchedule.objects.get_or_create(
        minute="*", hour="*", day_of_week="*", day_of_month="*", month_of_year="*",
        timezone="UTC",
    )  # fmt: skip
    PeriodicTask.objects.update_or_create(
        name=DISPATCH_ENTRY,
        defaults={"task": "monitors.dispatch.due", "crontab": every_minute, "expire_seconds": 50},
    )
    return DISPATCH_ENTRY


def switchable_broker_app(url: str) -> Celery:
    """A Celery app of our settings that publishes to ``url`` (``broker_write_url``:
    CELERY_BROKER_URL in the environment outranks ``broker_url``); not the current app,
    so nothing else in the run goes through it."""
    switchable = Celery("sentinel-beat-reoffer", set_as_current=False)
    switchable.config_from_object("django.conf:settings", namespace="CELERY")
    switchable.conf.update(
        broker_write_url=url, task_publish_retry=False, broker_connection_timeout=0.5
    )
    return switchable


def broker_switch(app_: Celery, url: str) -> None:
    """Point ``app_``'s publishing at ``url``, as if its broker came back there: its
    connection and producer pools (made for the old URL) are dropped."""
    app_.conf.broker_write_url = url  # type: ignore[misc]  # settable: a ChainMap
    # Celery's private pools, made for the old URL; no public way to drop them.
    app_._pool = None  # type: ignore[attr-defined]
    app_.amqp._producer_pool = None  # type: ignore[attr-defined]


@pytest.mark.django_db(transaction=True)  # Beat runs in autocommit
def test_beat_offers_a_dispatch_again_until_rabbitmq_is_back_within_its_expiry(
    dispatch_queue, settings, dispatch_entry
):
    beat_app = switchable_broker_app("amqp://guest:guest@127.0.0.1:1//")
    scheduler = Scheduler(app=beat_app, lazy=False)
    entry = scheduler.schedule[dispatch_entry]
    due_at = timezone.now()

    scheduler.apply_entry(entry)  # RabbitMQ away at the minute's boundary
    scheduler._reoffer()  # and a second later
    [kept] = scheduler._reoffers.values()
    broker_switch(beat_app, settings.CELERY_BROKER_URL)  # back
    scheduler._reoffer()

    [message] = dispatch_queue()
    assert message.headers["task"] == "monitors.dispatch.due"
    expires = dt.datetime.fromisoformat(message.headers["expires"])
    # The run's own expiry, from when it fell due: not a fresh 50 s.
    assert expires == kept.until
    assert due_at + dt.timedelta(seconds=49) < expires <= timezone.now() + dt.timedelta(seconds=50)
    assert scheduler._reoffers == {}


@pytest.mark.django_db(transaction=True)
def test_beat_gives_a_task_up_at_its_expiry_and_wakes_every_second_until(caplog, dispatch_entry):
    beat_app = switchable_broker_app("amqp://guest:guest@127.0.0.1:1//")
    scheduler = Scheduler(app=beat_app, lazy=False)
    entry = scheduler.schedule[dispatch_entry]
    scheduler.apply_entry(entry)
    assert set(scheduler._reoffers) == {DISPATCH_ENTRY}

    # Nothing else due meanwhile: the library alone would sleep until the next run.
    assert scheduler.tick() <= 1.0
    scheduler._reoffers[DISPATCH_ENTRY] = dataclasses.replace(
        scheduler._reoffers[DISPATCH_ENTRY], until=timezone.now()
    )
    with caplog.at_level(logging.INFO, logger="sentinel.beat"):
        scheduler._reoffer()

    assert scheduler._reoffers == {}
    assert "expired before RabbitMQ was back" in caplog.text
