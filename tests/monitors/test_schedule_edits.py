"""An edit that changes what or how often a monitor is checked puts its next check at
most one new interval away; an edit never writes back the live state it read."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from monitors.models import Monitor
from monitors.services import monitor_update
from tests.factories import MonitorFactory

pytestmark = pytest.mark.django_db

DAY = dt.timedelta(days=1)


@pytest.mark.parametrize(
    "change",
    [
        {"interval_seconds": 60},
        {"url": "https://other.example.test/"},
        {"method": "POST"},
        {"kind": "tcp", "url": "tcp://db.example.test:5432"},
        {"keyword": "operational"},
        {"expected_status_codes": "200-399"},
        {"timeout_seconds": 5},
        {"headers": {"X-Token": "1"}},
        {"kind": "dns", "url": "dns://example.test"},
        {"json_assertions": [{"path": "status", "op": "==", "value": "ok"}]},
    ],
    ids=lambda change: "-".join(change),
)
def test_a_change_of_what_or_how_often_moves_the_next_check_within_one_interval(change):
    monitor = MonitorFactory(interval_seconds=86400, next_check_at=timezone.now() + DAY)
    interval = change.get("interval_seconds", 86400)

    before = timezone.now()
    monitor_update(monitor=Monitor.objects.get(pk=monitor.pk), **change)

    next_check = Monitor.objects.get(pk=monitor.pk).next_check_at
    assert next_check <= before + dt.timedelta(seconds=interval, milliseconds=500)


def test_a_shortened_interval_from_a_day_to_a_minute_checks_within_a_minute():
    monitor = MonitorFactory(interval_seconds=86400, next_check_at=timezone.now() + DAY)

    monitor_update(monitor=Monitor.objects.get(pk=monitor.pk), interval_seconds=60)

    assert Monitor.objects.get(pk=monitor.pk).next_check_at <= timezone.now() + dt.timedelta(
        seconds=60
    )


def test_a_rename_leaves_the_schedule_alone():
    later = timezone.now() + DAY
    monitor = MonitorFactory(interval_seconds=86400, next_check_at=later)

    monitor_update(monitor=Monitor.objects.get(pk=monitor.pk), name="Renamed")

    assert Monitor.objects.get(pk=monitor.pk).next_check_at == later


def test_an_edit_never_moves_the_next_check_later_than_the_dispatcher_put_it():
    soon = timezone.now() + dt.timedelta(seconds=5)
    monitor = MonitorFactory(interval_seconds=3600, next_check_at=soon)

    monitor_update(monitor=Monitor.objects.get(pk=monitor.pk), interval_seconds=600)

    assert Monitor.objects.get(pk=monitor.pk).next_check_at == soon


def test_an_edit_does_not_write_back_the_live_state_it_loaded():
    monitor = MonitorFactory(status=Monitor.Status.UP)
    form_copy = Monitor.objects.get(pk=monitor.pk)  # loaded, say, by an open edit page
    # Meanwhile the probe path marks it down.
    Monitor.objects.filter(pk=monitor.pk).update(
        status=Monitor.Status.DOWN, consecutive_failures=3, recent_failures=0b111
    )

    monitor_update(monitor=form_copy, name="Renamed")

    stored = Monitor.objects.get(pk=monitor.pk)
    assert (stored.name, stored.status, stored.consecutive_failures) == ("Renamed", "down", 3)
    assert stored.recent_failures == 0b111


def test_saving_enabled_off_pauses_like_the_pause_action(admin_client):
    monitor = MonitorFactory(status=Monitor.Status.UP)
    copy = Monitor.objects.get(pk=monitor.pk)
    copy.enabled = False
    copy.save()

    stored = Monitor.objects.get(pk=monitor.pk)
    assert (stored.enabled, stored.status) == (False, Monitor.Status.PAUSED)
    copy.enabled = True
    copy.save()
    assert Monitor.objects.get(pk=monitor.pk).status == Monitor.Status.PENDING


def test_a_monitor_created_disabled_is_paused_whoever_creates_it(user):
    from monitors.services import monitor_create

    monitor = monitor_create(owner=user, name="Later", url="https://later.example/", enabled=False)

    assert Monitor.objects.get(pk=monitor.pk).status == Monitor.Status.PAUSED
