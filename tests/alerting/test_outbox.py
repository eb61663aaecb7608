"""Notifications are an outbox: written in ingest's transaction, queued after commit, and
queued again by the sweep when RabbitMQ was away at commit time, or when the task of a
retry was lost with it."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from django.utils import timezone
from kombu.exceptions import OperationalError as KombuOperationalError

from alerting import services, tasks
from alerting.models import Notification
from alerting.services import alerts_sweep
from telemetry.ingest import rows_store
from tests.alerting.conftest import check
from tests.factories import AlertRuleFactory, MonitorFactory, WebhookChannelFactory


@pytest.fixture
def broker_away(monkeypatch) -> None:
    """Publishing a delivery fails as Celery fails with RabbitMQ out of reach."""

    def refused(*args: object, **kwargs: object) -> None:
        raise KombuOperationalError("[Errno 111] Connection refused")

    monkeypatch.setattr(tasks.deliver_many, "delay", refused)


@pytest.mark.django_db
@pytest.mark.usefixtures("telemetry_tables")
def test_a_broker_away_at_commit_leaves_the_notification_pending_for_the_sweep(
    broker_away, django_capture_on_commit_callbacks, caplog, monkeypatch
):
    monitor = MonitorFactory(confirm_failures=1)
    rule = AlertRuleFactory(monitor=monitor)
    rule.channels.add(WebhookChannelFactory(owner=monitor.owner))

    with caplog.at_level(logging.WARNING), django_capture_on_commit_callbacks(execute=True):
        rows_store(rows=[check(monitor, 0, False).to_wire()])  # does not raise

    [notification] = Notification.objects.all()
    assert notification.status == Notification.Status.PENDING
    [line] = [r.getMessage() for r in caplog.records if "RabbitMQ" in r.getMessage()]
    assert "stay pending" in line

    queued: list[list[int]] = []
    monkeypatch.setattr(tasks.deliver_many, "delay", queued.append)  # the broker is back
    with django_capture_on_commit_callbacks(execute=True):
        soon = alerts_sweep(now=timezone.now() + dt.timedelta(seconds=10))
        later = alerts_sweep(now=timezone.now() + dt.timedelta(seconds=90))

    assert (soon["requeued"], later["requeued"]) == (0, 1)
    assert queued == [[notification.pk]]


@pytest.mark.django_db
def test_a_retry_lost_with_the_broker_is_queued_again_by_the_sweep(receiver, alerts_queue):
    channel = WebhookChannelFactory(config={"url": receiver.url("/flaky/1"), "secret": "s"})
    monitor = MonitorFactory(owner=channel.owner)
    notification = Notification.objects.create(
        channel=channel, monitor=monitor, event="down", dedup_key="test:down", payload={}
    )
    # Its first attempt fails (HTTP 503, worth a retry); the retry's task is never
    # queued, as when RabbitMQ was away at that moment.
    retries = services.notifications_deliver(notification_ids=[notification.pk])
    notification.refresh_from_db()
    assert (notification.status, retries) == ("retrying", {5: [notification.pk]})

    before_due = alerts_sweep(now=timezone.now() + dt.timedelta(seconds=30))
    assert (before_due["requeued"], alerts_queue()) == (0, [])
    swept = alerts_sweep(now=timezone.now() + dt.timedelta(minutes=2))

    [message] = alerts_queue()
    assert swept["requeued"] == 1
    assert message.headers["task"] == "alerting.deliver_many"
    tasks.deliver_many(*message.decode()[0])  # the worker takes it
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == ("sent", 2)
