"""The whole check path in one process: probe task -> Redis buffer -> ingest (rows, live
state, incident, notification row) -> webhook, against real MariaDB and Redis, a local
target and a local receiver."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from alerting.models import AlertRule, NotificationChannel
from core.time import to_epoch_ms as to_ms
from monitors.dispatch import dispatch_due
from monitors.models import Incident, Monitor
from monitors.slots import message_encode
from monitors.tasks import probe_check_batch
from telemetry.buffer import STREAM_KEY
from telemetry.ingest import ingest_batch
from tests.alerting.conftest import eager_celery, receiver  # noqa: F401 (fixtures)
from tests.factories import MonitorFactory
from tests.monitors.conftest import certificates, target  # noqa: F401 (fixtures)
from tests.monitors.test_dispatch import Collect
from tests.monitors.test_dispatch_outage import behind_by


def down_alerts_to(receiver, *, monitor):  # noqa: F811
    """A down rule of ``monitor`` with a webhook channel to ``receiver``."""
    channel = NotificationChannel.objects.create(
        owner=monitor.owner,
        name="ops hook",
        kind=NotificationChannel.Kind.WEBHOOK,
        config={"url": receiver.url("/ok"), "secret": "s3cret"},
    )
    rule = AlertRule.objects.create(monitor=monitor, kind=AlertRule.Kind.DOWN, threshold=2)
    rule.channels.add(channel)


@pytest.mark.django_db
@pytest.mark.usefixtures("telemetry_tables")
def test_a_confirmed_outage_found_by_the_probe_task_reaches_the_webhook_once(
    target,  # noqa: F811
    receiver,  # noqa: F811
    eager_celery,  # noqa: F811
    redis_client,
    django_capture_on_commit_callbacks,
):
    monitor = MonitorFactory(url=target.url("/status/500"), confirm_failures=2)
    down_alerts_to(receiver, monitor=monitor)
    # Past slots: the probe task waits for a slot that is still ahead.
    first = timezone.now().replace(microsecond=0) - dt.timedelta(minutes=3)

    for slot in (first, first + dt.timedelta(minutes=1), first + dt.timedelta(minutes=2)):
        probe_check_batch.apply(args=([[monitor.pk, to_ms(slot)]],)).get()
    assert redis_client.xlen(STREAM_KEY) == 3
    monitor.refresh_from_db()
    assert monitor.status == Monitor.Status.PENDING  # the probe worker writes no state

    with django_capture_on_commit_callbacks(execute=True):
        assert ingest_batch(consumer="e2e").stored == 3

    monitor.refresh_from_db()
    assert monitor.status == Monitor.Status.DOWN
    assert Incident.objects.filter(monitor=monitor, ended_at__isnull=True).count() == 1
    posts = receiver.wait_for(1)
    assert len(posts) == 1
    assert posts[0].json()["event"] == "down"


@pytest.mark.django_db
@pytest.mark.usefixtures("telemetry_tables")
def test_a_target_outage_that_began_while_mysql_was_away_is_alerted_once_it_is_back(
    target,  # noqa: F811
    receiver,  # noqa: F811
    eager_celery,  # noqa: F811
    redis_client,
    django_capture_on_commit_callbacks,
):
    """No dispatch ran for 90 s (MySQL away) while the target went down: the first
    dispatch after it hands out the missed slots, their checks confirm the outage and
    the down alert goes out."""
    monitor = MonitorFactory(url=target.url("/status/503"), interval_seconds=30)
    down_alerts_to(receiver, monitor=monitor)
    now = timezone.now()
    behind_by([monitor.pk], seconds=90, interval_seconds=30, now=now)
    collect = Collect()

    dispatch_due(now=now, publish=collect)
    missed = [s for s in collect.slots if s.starts_ms is not None]  # caught up
    assert len(missed) >= 2 and all(s.scheduled_ms < to_ms(now) for s in missed)
    args, kwargs = message_encode(missed)
    probe_check_batch.apply(args=tuple(args), kwargs=kwargs).get()  # as their ETAs come
    with django_capture_on_commit_callbacks(execute=True):
        assert ingest_batch(consumer="e2e").stored == len(missed)

    monitor.refresh_from_db()
    assert monitor.status == Monitor.Status.DOWN
    incident = Incident.objects.get(monitor=monitor)
    assert to_ms(incident.started_at) in {s.scheduled_ms for s in missed}  # while MySQL was away
    [post] = receiver.wait_for(1)
    assert post.json()["event"] == "down"
