from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
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
