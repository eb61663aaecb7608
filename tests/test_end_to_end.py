"""The whole check path in one process: probe task -> Redis buffer -> ingest (rows, live
state, incident, notification row) -> webhook, against real MariaDB and Redis, a local
target and a local receiver."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from alerting.models import AlertRule, NotificationChannel
from core.time import to_epoch_ms as to_ms
from monitors.models import Incident, Monitor
from monitors.tasks import probe_check_batch
from telemetry.buffer import STREAM_KEY
from telemetry.ingest import ingest_batch
from tests.alerting.conftest import eager_celery, receiver  # noqa: F401 (fixtures)
from tests.factories import MonitorFactory
from tests.monitors.conftest import certificates, target  # noqa: F401 (fixtures)


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
    channel = NotificationChannel.objects.create(
        owner=monitor.owner,
        name="ops hook",
        kind=NotificationChannel.Kind.WEBHOOK,
        config={"url": receiver.url("/ok"), "secret": "s3cret"},
    )
    rule = AlertRule.objects.create(monitor=monitor, kind=AlertRule.Kind.DOWN, threshold=2)
    rule.channels.add(channel)
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
