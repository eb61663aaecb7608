from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from django.core import mail

from alerting.models import AlertRule, MonitorAlerting, Notification
from monitors.models import Incident, Monitor
from monitors.services import monitor_set_tags
from monitors.state import monitors_apply_results
from tests.alerting.conftest import T0, check
from tests.factories import (
    AlertRuleFactory,
    MaintenanceWindowFactory,
    MonitorFactory,
    NotificationChannelFactory,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]


def rule_with_email(kind: str = AlertRule.Kind.DOWN, **fields) -> AlertRule:
    monitor = fields.pop("monitor", None) or MonitorFactory(status=Monitor.Status.UP)
    rule = AlertRuleFactory(monitor=monitor, kind=kind, **fields)
    rule.channels.set([NotificationChannelFactory(owner=monitor.owner)])
    return rule


def sent() -> list[str]:
    return list(
        Notification.objects.filter(status="sent").order_by("id").values_list("event", flat=True)
    )


def test_a_latency_rule_fires_after_k_slow_checks_and_clears_once(feed):
    rule = rule_with_email(AlertRule.Kind.LATENCY, threshold=500, consecutive_checks=3)
    monitor = rule.monitor

    for minute, ms in enumerate([600, 700, 100, 800, 900]):
        feed([check(monitor, minute, True, duration_ms=ms)])
    assert sent() == []
    feed([check(monitor, 5, True, duration_ms=950)])
    feed([check(monitor, 6, False, duration_ms=10_000)])  # a failure leaves the streak alone
    feed([check(monitor, 7, True, duration_ms=990)])
    assert sent() == ["latency"]
    feed([check(monitor, 8, True, duration_ms=120)])
    feed([check(monitor, 9, True, duration_ms=110)])

    assert sent() == ["latency", "latency_ok"]
    assert "over 500 ms for 3 checks" in mail.outbox[0].body


def test_a_tls_rule_reminds_once_a_day(feed):
    rule = rule_with_email(AlertRule.Kind.TLS_EXPIRY, threshold=14)
    monitor = rule.monitor
    expires = T0 + dt.timedelta(days=10, hours=3)

    feed([check(monitor, 0, True, tls_expires_at=T0 + dt.timedelta(days=30))])
    assert sent() == []
    for minute in range(1, 6):
        feed([check(monitor, minute, True, tls_expires_at=expires)])
    assert sent() == ["tls_expiry"]
    feed([check(monitor, 24 * 60, True, tls_expires_at=expires)])

    assert sent() == ["tls_expiry", "tls_expiry"]
    assert "expires in 10 days" in mail.outbox[0].body
    assert "expires in 9 days" in mail.outbox[1].body


def test_a_flapping_monitor_sends_one_notice_then_holds_until_it_settles(feed, sweep, settings):
    settings.SENTINEL_FLAP_CHANGES, settings.SENTINEL_FLAP_SETTLE_MINUTES = 3, 15
    rule = rule_with_email(monitor=MonitorFactory(status=Monitor.Status.UP, confirm_failures=1))

    for minute in range(10):  # fails, recovers, fails, ... every check for 10 minutes
        feed([check(rule.monitor, minute, ok=minute % 2 == 1)])

    assert sent() == ["down", "up", "flapping"]
    assert Notification.objects.filter(status="held", hold_reason="flapping").count() == 8
    assert Incident.objects.count() == 5

    assert sweep(T0 + dt.timedelta(minutes=20))["queued"] == 0
    sweep(T0 + dt.timedelta(minutes=9 + 15))
    assert sent() == ["down", "up", "flapping", "settled"]
    assert "is up now" in mail.outbox[-1].body
    # Stable again: the next outage is alerted normally.
    feed([check(rule.monitor, 60, False)])
    assert sent()[-1] == "down"


def test_a_one_off_maintenance_window_holds_alerts_but_not_incidents(feed):
    rule = rule_with_email()
    window = MaintenanceWindowFactory(
        owner=rule.monitor.owner, starts_at=T0, ends_at=T0 + dt.timedelta(minutes=30)
    )
    window.monitors.set([rule.monitor])

    feed([check(rule.monitor, 0, False)])
    feed([check(rule.monitor, 1, False)])
    feed([check(rule.monitor, 29, True)])
    feed([check(rule.monitor, 30, False)])
    feed([check(rule.monitor, 31, False)])

    assert Incident.objects.count() == 2
    assert list(
        Notification.objects.order_by("id").values_list("event", "status", "hold_reason")
    ) == [
        ("down", "held", "maintenance"),
        ("up", "held", "maintenance"),
        ("down", "sent", ""),
    ]
    assert len(mail.outbox) == 1


def test_a_weekly_maintenance_window_on_a_tag_holds_alerts_every_week(feed, other_user):
    rule = rule_with_email(monitor=MonitorFactory(status=Monitor.Status.UP, confirm_failures=1))
    monitor_set_tags(monitor=rule.monitor, names=["db"])
    first = T0 - dt.timedelta(weeks=3, minutes=10)  # three weeks ago, 11:50-12:10
    window = MaintenanceWindowFactory(
        owner=rule.monitor.owner,
        starts_at=first,
        ends_at=first + dt.timedelta(minutes=20),
        repeat="weekly",
    )
    window.tags.set(rule.monitor.tags.all())
    # Tags are shared: another user's window on the same tag must not silence it.
    MaintenanceWindowFactory(owner=other_user, starts_at=first, repeat="weekly").tags.set(
        rule.monitor.tags.all()
    )

    feed([check(rule.monitor, 0, False)])  # 12:00, inside this week's window
    feed([check(rule.monitor, 5, True)])
    feed([check(rule.monitor, 15, False)])  # 12:15, after it

    assert list(Notification.objects.order_by("id").values_list("event", "status")) == [
        ("down", "held"),
        ("up", "held"),
        ("down", "sent"),
    ]
    assert window.is_active(T0 + dt.timedelta(weeks=1))
    assert not window.is_active(T0 + dt.timedelta(days=1))


def test_it_reminds_every_r_minutes_while_down(feed, sweep):
    rule = rule_with_email()
    MonitorAlerting.objects.create(monitor=rule.monitor, reminder_minutes=10)
    feed([check(rule.monitor, 0, False), check(rule.monitor, 1, False)])

    for minute in (5, 11, 12, 21, 22):
        sweep(T0 + dt.timedelta(minutes=minute))
    feed([check(rule.monitor, 23, True)])
    sweep(T0 + dt.timedelta(minutes=40))

    assert sent() == ["down", "reminder", "reminder", "up"]
    assert "still down" in mail.outbox[1].body


def test_the_sweep_sends_the_alert_of_a_probe_task_that_died_before_alerting(sweep):
    rule = rule_with_email(monitor=MonitorFactory(status=Monitor.Status.UP, confirm_failures=1))
    # The probe task committed the state change, then died before alerts_process.
    monitors_apply_results(results=[check(rule.monitor, 0, False)])

    sweep(T0 + dt.timedelta(seconds=10))  # within the grace period: leave it to the task
    assert sent() == []
    sweep(T0 + dt.timedelta(minutes=1))
    sweep(T0 + dt.timedelta(minutes=2))

    assert sent() == ["down"]
    assert "is down: status: HTTP 503" in mail.outbox[0].body


def p95_rule(*, window_minutes: int = 10, threshold: int = 500) -> AlertRule:
    monitor = MonitorFactory(status=Monitor.Status.UP, interval_seconds=60)
    return rule_with_email(
        AlertRule.Kind.LATENCY_P95,
        monitor=monitor,
        threshold=threshold,
        window_minutes=window_minutes,
    )


@pytest.mark.usefixtures("redis_client")
def test_a_p95_latency_rule_fires_when_the_window_p95_crosses_and_recovers(feed):
    rule = p95_rule()
    monitor = rule.monitor

    for minute in range(10):
        feed([check(monitor, minute, True, duration_ms=100 + minute)])
    feed([check(monitor, 10, True, duration_ms=5000)])  # one slow check in ten: a blip
    feed([check(monitor, 11, False, duration_ms=10_000)])  # failures are not latency
    assert sent() == []
    feed([check(monitor, 12, True, duration_ms=4000)])  # two in nine: the p95 is slow
    assert sent() == ["latency"]
    for minute in range(13, 20):
        feed([check(monitor, minute, True, duration_ms=120)])
    assert sent() == ["latency"]  # both slow checks are still in the window (9, 19]
    feed([check(monitor, 20, True, duration_ms=120)])  # (10, 20]: one slow check left

    assert sent() == ["latency", "latency_ok"]
    assert "p95 latency over the last 10 min is 4000 ms (9 checks), over 500 ms" in (
        mail.outbox[0].body
    )


@pytest.mark.usefixtures("redis_client")
def test_a_p95_latency_rule_counts_a_replayed_result_once_and_reads_no_stored_checks(feed):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    rule = p95_rule(window_minutes=5)
    for minute in range(5):
        feed([check(rule.monitor, minute, True, duration_ms=90)])
    slow = check(rule.monitor, 5, True, duration_ms=3000)

    with CaptureQueriesContext(connection) as queries:
        feed([slow])
        feed([slow])  # the probe task was redelivered: same result, same member

    assert sent() == []
    assert not any("check_result" in q["sql"] for q in queries.captured_queries)
    # A batch that carries several checks at once is judged check by check.
    feed([check(rule.monitor, m, True, duration_ms=2500) for m in (6, 7, 8)])
    assert sent() == ["latency"]


def test_a_p95_window_must_hold_a_few_checks_and_at_most_an_hour(user):
    from django.core.exceptions import ValidationError

    monitor = MonitorFactory(owner=user, interval_seconds=120)
    too_short = AlertRule(monitor=monitor, kind=AlertRule.Kind.LATENCY_P95, window_minutes=5)
    too_long = AlertRule(monitor=monitor, kind=AlertRule.Kind.LATENCY_P95, window_minutes=61)

    with pytest.raises(ValidationError, match="holds 2 checks"):
        too_short.full_clean()
    with pytest.raises(ValidationError) as error:
        too_long.full_clean()
    assert "window_minutes" in error.value.message_dict
    AlertRule(monitor=monitor, kind=AlertRule.Kind.LATENCY_P95, window_minutes=6).full_clean()


def test_pausing_a_down_monitor_sends_no_recovery_alert_then_or_from_the_sweep(feed, sweep):
    rule = rule_with_email(monitor=MonitorFactory(status=Monitor.Status.UP, confirm_failures=1))
    feed([check(rule.monitor, 0, False)])
    assert sent() == ["down"]

    Monitor.objects.filter(pk=rule.monitor.pk).pause(now=T0 + dt.timedelta(minutes=2))
    sweep(T0 + dt.timedelta(minutes=3))  # inside the window the sweep looks back over
    Monitor.objects.filter(pk=rule.monitor.pk).resume(now=T0 + dt.timedelta(hours=48))
    feed([check(rule.monitor, 60 * 48, True)])

    assert sent() == ["down"]
    assert not any("up again" in str(m.body) for m in mail.outbox)


def test_a_target_failing_every_other_check_notifies_its_owner_within_five_checks(feed):
    rule = rule_with_email()  # the monitor's defaults: 2 in a row, or 3 of the last 5

    for minute in range(5):
        feed([check(rule.monitor, minute, ok=minute % 2 == 1)])  # fail, pass, fail, ...

    assert sent()[:1] == ["down"]
    assert Incident.objects.get().started_at == T0 + dt.timedelta(minutes=4)


def test_the_tls_rule_says_a_certificate_has_expired_and_names_the_one_that_did(feed):
    rule = rule_with_email(AlertRule.Kind.TLS_EXPIRY, threshold=14)
    expired = dataclasses.replace(
        check(rule.monitor, 0, False, tls_expires_at=T0 - dt.timedelta(days=2)),
        tls_expiring_subject="CN=Test Intermediate CA",
    )

    feed([expired])

    assert sent() == ["tls_expiry"]
    [message] = mail.outbox
    assert "expired" in message.subject.lower()
    assert "expired on" in str(message.body) and "CN=Test Intermediate CA" in str(message.body)


def test_the_tls_rule_names_an_intermediate_that_expires_first(feed):
    rule = rule_with_email(AlertRule.Kind.TLS_EXPIRY, threshold=14)
    soon = dataclasses.replace(
        check(rule.monitor, 0, True, tls_expires_at=T0 + dt.timedelta(days=10)),
        tls_expiring_subject="CN=Test Intermediate CA",
    )

    feed([soon])

    [message] = mail.outbox
    assert "expires in 10 days" in str(message.body)
    assert "CN=Test Intermediate CA" in str(message.body)


def check_at(monitor: Monitor, at: dt.datetime, ok: bool):
    return check(monitor, (at - T0) / dt.timedelta(minutes=1), ok)


@pytest.mark.parametrize(
    ("zone", "january", "july"),
    [
        # Sunday 02:00-03:00 on the local clock, entered in January.
        (
            "Europe/Berlin",
            dt.datetime(2026, 1, 4, 1, tzinfo=dt.UTC),
            dt.datetime(2026, 7, 5, 0, tzinfo=dt.UTC),
        ),
        (
            "America/New_York",
            dt.datetime(2026, 1, 4, 7, tzinfo=dt.UTC),
            dt.datetime(2026, 7, 5, 6, tzinfo=dt.UTC),
        ),
    ],
)
def test_a_weekly_window_holds_the_outage_in_its_local_hour_in_summer_and_winter(
    feed, zone, january, july
):
    rule = rule_with_email(monitor=MonitorFactory(status=Monitor.Status.UP, confirm_failures=1))
    window = MaintenanceWindowFactory(
        owner=rule.monitor.owner,
        time_zone=zone,
        starts_at=january,
        ends_at=january + dt.timedelta(hours=1),
        repeat="weekly",
    )
    window.monitors.set([rule.monitor])
    minutes = dt.timedelta(minutes=1)

    for start in (january + dt.timedelta(weeks=1), july):
        feed([check_at(rule.monitor, start + 10 * minutes, False)])  # 02:10 local: held
        feed([check_at(rule.monitor, start + 20 * minutes, True)])
        # 03:10 local: after the window. In July that is 01:10 UTC in Berlin (07:10 in
        # New York), inside the hour the window held in January.
        feed([check_at(rule.monitor, start + 70 * minutes, False)])
        feed([check_at(rule.monitor, start + 80 * minutes, True)])

    assert list(
        Notification.objects.order_by("id").values_list("event", "status", "hold_reason")
    ) == 2 * [
        ("down", "held", "maintenance"),
        ("up", "held", "maintenance"),
        ("down", "sent", ""),
        ("up", "sent", ""),
    ]


def test_a_down_rule_without_channels_is_not_raised_again_by_every_sweep(feed, sweep):
    monitor = MonitorFactory(status=Monitor.Status.UP, confirm_failures=1)
    AlertRuleFactory(monitor=monitor, kind=AlertRule.Kind.DOWN)  # nowhere to send
    feed([check(monitor, 0, False)])

    for minute in (1, 2, 3, 4):
        sweep(T0 + dt.timedelta(minutes=minute))

    # The outage is one state change, counted once, not once more per sweep.
    state = MonitorAlerting.objects.get(monitor=monitor)
    assert state.flapping_since is None and len(state.change_times) == 1
    assert not Notification.objects.exists()
