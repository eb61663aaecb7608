from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError

from alerting.models import AlertRule, NotificationChannel
from monitors.models import Monitor
from monitors.services import monitor_create, monitor_update
from monitors.validators import parse_status_codes, status_code_expected
from tests.factories import MonitorFactory

pytestmark = pytest.mark.django_db

GOOD: dict[str, Any] = {
    "name": "Shop",
    "url": "https://shop.example.test/health",
    "interval_seconds": 60,
    "timeout_seconds": 10,
}


def errors_of(excinfo: pytest.ExceptionInfo[ValidationError]) -> dict[str, list[str]]:
    return excinfo.value.message_dict


def test_it_creates_a_valid_monitor_with_tags(user):
    monitor = monitor_create(owner=user, tags=["Web", "shop", "web"], **GOOD)

    monitor.refresh_from_db()
    assert monitor.status == Monitor.Status.PENDING
    assert monitor.enabled is True
    assert sorted(monitor.tags.values_list("name", flat=True)) == ["shop", "web"]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("url", "ftp://example.test/file", "Enter a valid URL"),
        ("url", "javascript:alert(1)", "Enter a valid URL"),
        ("url", "https://user:pw@example.test/", "not in the URL"),
        ("url", "not a url", "Enter a valid URL"),
        ("interval_seconds", 10, "greater than or equal to 30"),
        ("interval_seconds", 86401, "less than or equal to 86400"),
        ("timeout_seconds", 0, "greater than or equal to 1"),
        ("timeout_seconds", 61, "less than or equal to 60"),
        ("expected_status_codes", "200-", "is not a status code"),
        ("expected_status_codes", "299-200", "low to high"),
        ("expected_status_codes", "700", "between 100 and 599"),
        ("headers", {"X-Ok": 1}, "must be strings"),
        ("headers", {"Bad Name": "x"}, "not a valid header name"),
        ("headers", {"Host": "evil.test"}, "set by the checker"),
        ("headers", {"X-Inject": "a\r\nX-Evil: 1"}, "must be one line"),
        ("headers", {f"X-H{i}": "v" for i in range(21)}, "At most 20 headers"),
        ("headers", {f"X-H{i}": "v" * 4000 for i in range(3)}, "add up to"),
        ("headers", ["X-Ok", "1"], "must be an object"),
        ("body", "x" * 65537, "limited to 65536 bytes"),
        ("kind", "icmp", "not a valid choice"),
    ],
)
def test_it_refuses_bad_input_with_a_field_error_and_saves_nothing(user, field, value, message):
    with pytest.raises(ValidationError) as excinfo:
        monitor_create(owner=user, **{**GOOD, field: value})

    assert any(message in text for text in errors_of(excinfo)[field])
    assert Monitor.objects.count() == 0


def test_it_requires_the_timeout_below_the_interval(user):
    with pytest.raises(ValidationError) as excinfo:
        monitor_create(owner=user, **{**GOOD, "interval_seconds": 30, "timeout_seconds": 30})

    assert "must be shorter than the interval" in errors_of(excinfo)["timeout_seconds"][0]


@pytest.mark.parametrize(
    ("kind", "target", "ok"),
    [
        ("tcp", "tcp://db.example.test:5432", True),
        ("tls", "tls://example.test:443", True),
        ("tcp", "tcp://db.example.test", False),
        ("tcp", "http://db.example.test:80", False),
        ("tls", "tls://:443", False),
    ],
)
def test_it_validates_host_and_port_targets(user, kind, target, ok):
    if ok:
        assert monitor_create(owner=user, **{**GOOD, "kind": kind, "url": target}).pk
    else:
        with pytest.raises(ValidationError) as excinfo:
            monitor_create(owner=user, **{**GOOD, "kind": kind, "url": target})
        assert "host:port" in errors_of(excinfo)["url"][0]


def test_a_failed_update_leaves_the_stored_monitor_unchanged(user):
    monitor = monitor_create(owner=user, tags=["web"], **GOOD)

    with pytest.raises(ValidationError):
        monitor_update(monitor=monitor, interval_seconds=5, tags=["other"])

    stored = Monitor.objects.get(pk=monitor.pk)
    assert stored.interval_seconds == 60
    assert list(stored.tags.values_list("name", flat=True)) == ["web"]


def test_it_parses_status_code_lists():
    assert parse_status_codes("200-299, 301") == [(200, 299), (301, 301)]
    assert status_code_expected(301, "200-299,301")
    assert not status_code_expected(302, "200-299,301")


def test_queryset_state_changes_pause_and_resume():
    running = MonitorFactory()
    paused = MonitorFactory(enabled=False, status=Monitor.Status.PAUSED)

    assert Monitor.objects.all().pause() == 1
    running.refresh_from_db()
    assert (running.enabled, running.status) == (False, Monitor.Status.PAUSED)

    assert Monitor.objects.filter(pk=paused.pk).resume() == 1
    paused.refresh_from_db()
    assert (paused.enabled, paused.status) == (True, Monitor.Status.PENDING)


@pytest.mark.parametrize(
    ("kind", "config", "ok"),
    [
        ("email", {"address": "ops@example.test"}, True),
        ("email", {"address": "not-an-address"}, False),
        ("webhook", {"url": "https://hooks.example.test/x", "secret": "s"}, True),
        ("webhook", {"url": "file:///etc/passwd"}, False),
        ("slack", {}, False),
        ("apprise", {"url": "tgram://token/chat"}, True),
        ("apprise", {"url": "nonsense"}, False),
    ],
)
def test_it_validates_notification_channel_config(user, kind, config, ok):
    channel = NotificationChannel(owner=user, name="c", kind=kind, config=config)
    if ok:
        channel.full_clean()
    else:
        with pytest.raises(ValidationError) as excinfo:
            channel.full_clean()
        assert "config" in excinfo.value.message_dict


def test_it_bounds_alert_rule_thresholds_per_kind():
    monitor = MonitorFactory()
    AlertRule(monitor=monitor, kind=AlertRule.Kind.TLS_EXPIRY, threshold=14).full_clean()
    with pytest.raises(ValidationError) as excinfo:
        AlertRule(monitor=monitor, kind=AlertRule.Kind.TLS_EXPIRY, threshold=400).full_clean()
    assert "between 1 and 365" in excinfo.value.message_dict["threshold"][0]
