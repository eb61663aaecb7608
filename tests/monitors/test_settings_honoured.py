"""Every setting a monitor accepts is one the checker honours: a combination the engine
would ignore is refused with a field error, in the admin, the dashboard form and the
API alike, and nothing already stored changes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from monitors.models import Monitor
from monitors.services import monitor_create, monitor_update
from tests.factories import MonitorFactory

pytestmark = pytest.mark.django_db

HTTP: dict[str, Any] = {"name": "Shop", "kind": "http", "url": "https://shop.example.test/"}
TCP: dict[str, Any] = {"name": "Db", "kind": "tcp", "url": "tcp://db.example.test:5432"}
TLS: dict[str, Any] = {"name": "Mail", "kind": "tls", "url": "tls://mail.example.test:465"}
DNS: dict[str, Any] = {"name": "Zone", "kind": "dns", "url": "dns://example.test"}
PING: dict[str, Any] = {"name": "Router", "kind": "ping", "url": "ping://router.example.test"}

# (base, what is set, the field the error names, a word of the message)
ASSERTIONS = [{"path": "status.indicator", "op": "==", "value": "none"}]
IGNORED: list[tuple[dict[str, Any], dict[str, Any], str, str]] = [
    (HTTP, {"method": "HEAD", "keyword": "operational"}, "keyword", "HEAD"),
    (HTTP, {"keyword_mode": "absent"}, "keyword_mode", "needs a keyword"),
    (HTTP, {"max_body_kib": 2048}, "max_body_kib", "needs a keyword"),
    *[
        (base, setting, field, "send no HTTP request")
        for base in (TCP, TLS, DNS, PING)
        for setting, field in (
            ({"method": "POST"}, "method"),
            ({"headers": {"X-Token": "1"}}, "headers"),
            ({"body": "ping"}, "body"),
            ({"expected_status_codes": "200"}, "expected_status_codes"),
            ({"keyword": "ok"}, "keyword"),
            ({"max_body_kib": 2048}, "max_body_kib"),
            ({"json_assertions": ASSERTIONS}, "json_assertions"),
        )
    ],
    (HTTP, {"method": "HEAD", "json_assertions": ASSERTIONS}, "json_assertions", "HEAD"),
]
HTTPS: dict[str, Any] = {**HTTP, "url": "https://shop.example.test/"}
PLAIN: dict[str, Any] = {**HTTP, "url": "http://shop.example.test/"}
A_CA = (Path(__file__).parent.parent / "data" / "test-ca.pem").read_text()
IGNORED += [
    (TCP, {"connect_to": "203.0.113.7"}, "connect_to", "connects to its URL's host"),
    (PLAIN, {"tls_verify": False}, "tls_verify", "have a certificate"),
    (PLAIN, {"tls_ca_bundle": A_CA}, "tls_ca_bundle", "have a certificate"),
    (TCP, {"tls_verify": False}, "tls_verify", "have a certificate"),
    (HTTPS, {"tls_verify": False, "tls_ca_bundle": A_CA}, "tls_ca_bundle", "Verification is off"),
    (DNS, {"connect_to": "203.0.113.7"}, "connect_to", "asks its resolver"),
    (DNS, {"tls_verify": False}, "tls_verify", "have a certificate"),
    (DNS, {"dns_expected": ["192.0.2.1"]}, "dns_match", "does not compare the answer"),
    (DNS, {"dns_match": "any"}, "dns_expected", "List the values"),
    *[
        (base, setting, field, "Only DNS monitors")
        for base in (HTTP, TCP)
        for setting, field in (
            ({"dns_record_type": "MX"}, "dns_record_type"),
            ({"dns_resolver": "9.9.9.9"}, "dns_resolver"),
            ({"dns_expected": ["192.0.2.1"]}, "dns_expected"),
            ({"dns_match": "exact"}, "dns_match"),
        )
    ],
    (PING, {"connect_to": "203.0.113.7"}, "connect_to", "sends to its target's host"),
    (PING, {"tls_verify": False}, "tls_verify", "have a certificate"),
    (PING, {"dns_resolver": "9.9.9.9"}, "dns_resolver", "Only DNS monitors"),
    (PING, {"ping_count": 10, "timeout_seconds": 5}, "timeout_seconds", "at least 7 s"),
    *[
        (base, setting, field, "Only ping monitors")
        for base in (HTTP, TCP, DNS)
        for setting, field in (
            ({"ping_count": 5}, "ping_count"),
            ({"ping_max_loss_percent": 0}, "ping_max_loss_percent"),
            ({"ping_max_rtt_ms": 200}, "ping_max_rtt_ms"),
        )
    ],
]
IDS = [f"{base['kind']}-{'-'.join(setting)}" for base, setting, _, _ in IGNORED]


@pytest.mark.parametrize(("base", "setting", "field", "word"), IGNORED, ids=IDS)
def test_the_model_refuses_a_setting_the_checker_would_ignore(user, base, setting, field, word):
    with pytest.raises(ValidationError) as excinfo:
        monitor_create(owner=user, **base, **setting)

    assert any(word in text for text in excinfo.value.message_dict[field])
    assert not Monitor.objects.exists()


@pytest.mark.parametrize(("base", "setting", "field", "word"), IGNORED, ids=IDS)
def test_the_api_answers_400_naming_the_field_and_keeps_the_stored_monitor(
    user, base, setting, field, word
):
    monitor = monitor_create(owner=user, **base)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")

    created = api.post("/api/v1/monitors/", {**base, **setting}, format="json")
    changed = api.patch(f"/api/v1/monitors/{monitor.pk}/", setting, format="json")

    for response in (created, changed):
        assert response.status_code == 400
        assert any(word in text for text in response.json()[field])
    assert Monitor.objects.count() == 1
    stored = Monitor.objects.get()
    assert all(getattr(stored, name) == getattr(monitor, name) for name in setting)


def form_data(monitor: Monitor, **changes: Any) -> dict[str, Any]:
    data = {
        "name": monitor.name,
        "kind": monitor.kind,
        "url": monitor.url,
        "method": monitor.method,
        "headers": "{}",
        "body": monitor.body,
        "expected_status_codes": monitor.expected_status_codes,
        "keyword": monitor.keyword,
        "keyword_mode": monitor.keyword_mode,
        "interval_seconds": monitor.interval_seconds,
        "timeout_seconds": monitor.timeout_seconds,
        "confirm_failures": monitor.confirm_failures,
        "confirm_window": monitor.confirm_window,
        "confirm_window_failures": monitor.confirm_window_failures,
        "recover_successes": monitor.recover_successes,
        "connect_to": monitor.connect_to,
        "tls_verify": "true" if monitor.tls_verify else "false",
        "tls_ca_bundle": monitor.tls_ca_bundle,
        "ping_count": monitor.ping_count,
        "ping_max_loss_percent": monitor.ping_max_loss_percent,
        "ping_max_rtt_ms": "" if monitor.ping_max_rtt_ms is None else monitor.ping_max_rtt_ms,
        "tags": "",
    }
    for name, value in changes.items():
        if name in ("headers", "dns_expected", "json_assertions"):
            value = json.dumps(value)
        elif name == "tls_verify":
            value = "true" if value else "false"
        data[name] = value
    return data


@pytest.mark.parametrize(("base", "setting", "field", "word"), IGNORED, ids=IDS)
def test_the_dashboard_form_shows_the_field_error_and_keeps_the_stored_monitor(
    client, user, base, setting, field, word
):
    monitor = monitor_create(owner=user, **base)
    client.force_login(user)

    response = client.post(f"/dashboard/monitors/{monitor.pk}/edit/", form_data(monitor, **setting))

    assert response.status_code == 200
    assert word.replace("'", "&#x27;") in response.content.decode()
    stored = Monitor.objects.get()
    assert all(getattr(stored, name) == getattr(monitor, name) for name in setting)


@pytest.mark.parametrize(("base", "setting", "field", "word"), IGNORED, ids=IDS)
def test_the_admin_refuses_it_too(admin_client, user, base, setting, field, word):
    monitor = monitor_create(owner=user, **base)
    data = {
        **form_data(monitor, **setting),
        "owner": user.pk,
        "enabled": "on",
        "alert_rules-TOTAL_FORMS": "0",
        "alert_rules-INITIAL_FORMS": "0",
    }

    response = admin_client.post(reverse("admin:monitors_monitor_change", args=[monitor.pk]), data)

    assert response.status_code == 200  # the form again, with its errors
    assert word.replace("'", "&#x27;") in response.content.decode()


def test_a_valid_head_check_and_a_plain_tcp_check_are_accepted(user):
    monitor_create(owner=user, **HTTP, method="HEAD")
    monitor_create(owner=user, **TCP)
    monitor_create(owner=user, **DNS)
    monitor_create(owner=user, **PING)

    assert Monitor.objects.count() == 4


def test_a_page_read_limit_serves_json_assertions_too(user):
    monitor = monitor_create(owner=user, **HTTP, json_assertions=ASSERTIONS, max_body_kib=64)

    assert monitor.max_body_kib == 64


def test_an_update_that_makes_a_setting_ignored_is_refused(user):
    monitor = monitor_create(owner=user, **HTTP, keyword="operational")

    with pytest.raises(ValidationError) as excinfo:
        monitor_update(monitor=Monitor.objects.get(pk=monitor.pk), method="HEAD")

    assert "keyword" in excinfo.value.message_dict
    assert Monitor.objects.get().method == "GET"


def test_stored_monitors_that_break_the_new_rules_are_untouched_until_edited(user):
    # Rows stored before the rule existed keep working; only a save is judged.
    legacy = MonitorFactory(owner=user, method="HEAD", keyword="operational")

    assert Monitor.objects.get(pk=legacy.pk).keyword == "operational"


@pytest.mark.parametrize(
    ("field", "value", "word"),
    [
        ("connect_to", "backend.example.test", "not an IP address"),
        ("connect_to", "203.0.113.7:8080", "not an IP address"),
        ("tls_ca_bundle", "not a certificate", "PEM certificates"),
        (
            "tls_ca_bundle",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "Not a readable",
        ),
        ("headers", {"Host": "shop.example.test"}, "'connect to'"),
    ],
)
def test_bad_connection_settings_get_a_field_error(user, field, value, word):
    with pytest.raises(ValidationError) as excinfo:
        monitor_create(owner=user, **HTTPS, **{field: value})

    assert any(word in text for text in excinfo.value.message_dict[field])


def test_a_virtual_host_on_an_address_and_a_private_ca_are_accepted(user):
    monitor = monitor_create(owner=user, **HTTPS, connect_to="2001:db8::7", tls_ca_bundle=A_CA)

    assert (monitor.connect_to, monitor.tls_verify) == ("2001:db8::7", True)


def test_a_form_that_leaves_out_the_tls_choice_keeps_verification_on(client, user):
    monitor = monitor_create(owner=user, **HTTPS)
    client.force_login(user)
    data = form_data(monitor, name="Renamed")
    del data["tls_verify"], data["connect_to"], data["tls_ca_bundle"]

    client.post(f"/dashboard/monitors/{monitor.pk}/edit/", data)

    stored = Monitor.objects.get()
    assert (stored.name, stored.tls_verify) == ("Renamed", True)
