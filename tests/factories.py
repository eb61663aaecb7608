from __future__ import annotations

import datetime as dt

import factory
from django.contrib.auth.models import User

from alerting.models import AlertRule, MaintenanceWindow, NotificationChannel
from monitors.models import Monitor
from statuspages.models import StatusPage
from telemetry.records import CheckResult


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = User

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.test")
    password = factory.django.Password("correct horse")


class MonitorFactory(factory.django.DjangoModelFactory[Monitor]):
    class Meta:
        model = Monitor

    owner = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"Monitor {n}")
    url = factory.Sequence(lambda n: f"http://127.0.0.1:8081/ok?n={n}")
    interval_seconds = 60
    timeout_seconds = 10


class NotificationChannelFactory(factory.django.DjangoModelFactory[NotificationChannel]):
    class Meta:
        model = NotificationChannel

    owner = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"Channel {n}")
    kind = NotificationChannel.Kind.EMAIL
    config = factory.LazyAttribute(lambda c: {"address": f"{c.owner.username}@example.test"})


class WebhookChannelFactory(NotificationChannelFactory):
    kind = NotificationChannel.Kind.WEBHOOK
    config = factory.LazyFunction(lambda: {"url": "http://127.0.0.1:9/hook", "secret": "s3cret"})


class MaintenanceWindowFactory(factory.django.DjangoModelFactory[MaintenanceWindow]):
    class Meta:
        model = MaintenanceWindow

    owner = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"Window {n}")
    starts_at = factory.LazyFunction(lambda: dt.datetime.now(dt.UTC))
    ends_at = factory.LazyAttribute(lambda w: w.starts_at + dt.timedelta(hours=1))


class AlertRuleFactory(factory.django.DjangoModelFactory[AlertRule]):
    class Meta:
        model = AlertRule

    monitor = factory.SubFactory(MonitorFactory)
    kind = AlertRule.Kind.DOWN
    threshold = 2


class CheckResultFactory(factory.Factory[CheckResult]):
    """A successful HTTP check scheduled in the last hour (results are dataclasses)."""

    class Meta:
        model = CheckResult

    monitor_id = 1
    scheduled_at = factory.Sequence(
        lambda n: (
            dt.datetime.now(dt.UTC).replace(microsecond=0)
            - dt.timedelta(hours=1)
            + dt.timedelta(milliseconds=n)
        )
    )
    started_at = factory.LazyAttribute(lambda r: r.scheduled_at + dt.timedelta(milliseconds=40))
    duration_ms = 120
    ok = True
    status_code = 200


class StatusPageFactory(factory.django.DjangoModelFactory[StatusPage]):
    class Meta:
        model = StatusPage

    owner = factory.SubFactory(UserFactory)
    slug = factory.Sequence(lambda n: f"page-{n}")
    title = factory.Sequence(lambda n: f"Status {n}")
