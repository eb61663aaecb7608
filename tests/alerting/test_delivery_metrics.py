"""Delivery counts each send attempt by what it led to, for /metrics
(``sentinel_notification_attempts_total``)."""

from __future__ import annotations

import pytest

from alerting import services
from alerting.models import Notification
from alerting.services import ATTEMPTS_KEY
from monitors.models import Monitor
from tests.alerting.conftest import check
from tests.factories import AlertRuleFactory, MonitorFactory, WebhookChannelFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]


def test_each_attempt_is_counted_as_sent_retrying_or_failed(receiver, feed, redis_client):
    flaky, fine, gone = (
        WebhookChannelFactory(config={"url": receiver.url(path), "secret": "s"})
        for path in ("/flaky/2", "/ok", "/status/410")
    )
    rule = AlertRuleFactory(monitor=MonitorFactory(status=Monitor.Status.UP, confirm_failures=1))
    rule.channels.set([flaky, fine, gone])

    feed([check(rule.monitor, 0, False)])

    assert sorted(Notification.objects.values_list("status", "attempts")) == [
        ("failed", 1),
        ("sent", 1),
        ("sent", 3),
    ]
    # The flaky channel: two attempts retried, then sent; the gone one failed for good.
    assert redis_client.hgetall(ATTEMPTS_KEY) == {b"sent": b"2", b"retrying": b"2", b"failed": b"1"}


def test_delivery_goes_on_when_the_count_cannot_be_kept(receiver, settings):
    channel = WebhookChannelFactory(config={"url": receiver.url(), "secret": "s"})
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there

    notification = services.channel_send_test(channel=channel)

    assert notification.status == "sent" and len(receiver.requests) == 1
