"""Notifications are an outbox: written in ingest's transaction, queued after commit, and
queued again by the sweep when RabbitMQ was away at commit time."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from django.utils import timezone
from kombu.exceptions import OperationalError as KombuOperationalError

from alerting import tasks
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
