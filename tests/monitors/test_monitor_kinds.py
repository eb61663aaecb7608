"""Validation of the DNS and ping monitors' fields and of JSON assertions, shared by the
admin, the dashboard form and the API (each refuses with a field error and saves
nothing)."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from monitors.models import Monitor
from monitors.probes import spec_from_monitor
from monitors.services import monitor_create, monitor_update

pytestmark = pytest.mark.django_db

DNS: dict[str, Any] = {"name": "Zone", "kind": "dns", "url": "dns://example.test"}


def refused(user, **fields) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as excinfo:
        monitor_create(owner=user, **fields)
    assert not Monitor.objects.exists()
    return excinfo.value.message_dict


@pytest.mark.parametrize(
    ("record_type", "expected"),
    [
        ("A", ["192.0.2.1", "192.0.2.2"]),
        ("AAAA", ["2001:db8::1"]),
        ("CNAME", ["target.example.test."]),
        ("MX", ["10 mail.example.test"]),
        ("TXT", ["v=spf1 include:_spf.example.test ~all", '"quoted " "parts"']),
        ("NS", ["ns1.example.test"]),
        ("SOA", ["ns1.example.test hostmaster.example.test"]),
        ("CAA", ['0 issue "letsencrypt.org"']),
    ],
)
def test_a_dns_monitor_of_each_record_type_is_accepted(user, record_type, expected):
    monitor = monitor_create(
        owner=user, **DNS, dns_record_type=record_type, dns_expected=expected, dns_match="all"
    )

    spec = spec_from_monitor(Monitor.objects.get(pk=monitor.pk))
    assert (spec.kind, spec.dns_record_type, spec.dns_expected) == (
        "dns",
        record_type,
        tuple(expected),
    )


@pytest.mark.parametrize(
    "url",
    [
        "dns://example.test",
        "dns://_dmarc.example.test",
        "dns://Example.TEST.",
        "dns://bücher.example",
    ],
)
def test_a_dns_target_names_a_record(user, url):
    assert monitor_create(owner=user, **{**DNS, "url": url}).pk


@pytest.mark.parametrize(
    ("url", "word"),
    [
        ("example.test", "dns://name"),
        ("https://example.test/", "dns://name"),
        ("dns://example.test:53", "dns://name"),
        ("dns://example.test/path", "dns://name"),
        ("dns://example.test?type=MX", "dns://name"),
        ("dns://a..test", "not a DNS name"),
        ("dns://ex$ample.test", "not a DNS name"),
        (f"dns://{'a' * 64}.test", "not a DNS name"),
    ],
)
def test_a_dns_target_of_another_form_is_refused(user, url, word):
    errors = refused(user, **{**DNS, "url": url})

    assert any(word in text for text in errors["url"])


@pytest.mark.parametrize("resolver", ["9.9.9.9", "9.9.9.9:5353", "2620:fe::fe", "[2620:fe::fe]:53"])
def test_a_resolver_is_an_address_with_an_optional_port(user, resolver):
    assert monitor_create(owner=user, **DNS, dns_resolver=resolver).dns_resolver == resolver


@pytest.mark.parametrize(
    "resolver", ["dns.google", "9.9.9.9:0", "9.9.9.9:70000", "[9.9.9.9]:53", "9.9.9.9:x"]
)
def test_a_resolver_by_name_or_with_a_bad_port_is_refused(user, resolver):
    errors = refused(user, **DNS, dns_resolver=resolver)

    assert "not a resolver address" in errors["dns_resolver"][0]


@pytest.mark.parametrize(
    ("record_type", "value", "word"),
    [
        ("A", "mail.example.test", "not an IPv4 address"),
        ("A", "2001:db8::1", "not an IPv4 address"),
        ("AAAA", "192.0.2.1", "not an IPv6 address"),
        ("MX", "mail.example.test", "'preference host'"),
        ("SOA", "ns1.example.test hostmaster.example.test soon", "first fields"),
        ("CAA", "issue", "'flags tag value'"),
    ],
)
def test_an_expected_value_that_is_not_of_the_record_type_is_refused(
    user, record_type, value, word
):
    errors = refused(
        user, **DNS, dns_record_type=record_type, dns_expected=[value], dns_match="any"
    )

    assert any(word in text for text in errors["dns_expected"]), errors


@pytest.mark.parametrize(
    ("expected", "word"),
    [
        ("192.0.2.1", "a list of strings"),
        ([1], "a list of strings"),
        (["  "], "1 to 2048 characters"),
        ([f"192.0.2.{n}" for n in range(21)], "At most 20"),
    ],
)
def test_expected_values_are_a_short_list_of_strings(user, expected, word):
    errors = refused(user, **DNS, dns_expected=expected, dns_match="any")

    assert any(word in text for text in errors["dns_expected"]), errors


def test_an_edit_to_a_dns_field_reschedules(user):
    monitor = monitor_create(owner=user, **DNS)
    Monitor.objects.filter(pk=monitor.pk).update(next_check_at="2099-01-01T00:00:00Z")

    monitor_update(monitor=Monitor.objects.get(pk=monitor.pk), dns_record_type="MX")

    assert Monitor.objects.get(pk=monitor.pk).next_check_at.year < 2099


def test_the_api_creates_and_shows_a_dns_monitor(user):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    body = {
        **DNS,
        "dns_record_type": "MX",
        "dns_resolver": "9.9.9.9",
        "dns_expected": ["10 mail.example.test"],
        "dns_match": "exact",
    }

    created = api.post("/api/v1/monitors/", body, format="json")

    assert created.status_code == 201, created.content
    shown = api.get(f"/api/v1/monitors/{created.json()['id']}/").json()
    assert {name: shown[name] for name in body} == body


HTTP: dict[str, Any] = {"name": "Status", "url": "https://status.example.test/api/v2/status.json"}
GOOD_ASSERTIONS: list[dict[str, Any]] = [
    {"path": "status.indicator", "op": "==", "value": "none"},
    {"path": "components[?name=='API'].status | [0]", "op": "!=", "value": "major_outage"},
    {"path": "page.updated_at", "op": "exists"},
    {"path": "latency_ms", "op": "<", "value": 500},
    {"path": "regions", "op": "contains", "value": "eu"},
    {"path": "meta", "op": "==", "value": {"nested": [1, None, True]}},
]


def test_json_assertions_are_stored_and_reach_the_check(user):
    monitor = monitor_create(owner=user, **HTTP, json_assertions=GOOD_ASSERTIONS)

    spec = spec_from_monitor(Monitor.objects.get(pk=monitor.pk))
    assert [tuple(a) for a in spec.json_assertions] == [
        (a["path"], a["op"], a.get("value")) for a in GOOD_ASSERTIONS
    ]


@pytest.mark.parametrize(
    ("assertions", "word"),
    [
        ({"path": "a", "op": "exists"}, "a list of"),
        (["status.indicator == 'none'"], 'give an object {"path"'),
        ([{"path": "a.", "op": "==", "value": 1}], "not a JMESPath expression: unexpected end"),
        ([{"path": "a[?", "op": "exists"}], "it ends too early"),
        ([{"path": "nosuch(a)", "op": "exists"}], "unknown function nosuch()"),
        ([{"path": "", "op": "exists"}], "give a path"),
        ([{"path": "a", "op": "~=", "value": 1}], "unknown op '~='"),
        ([{"path": "a", "op": "=="}], "'==' needs a value"),
        ([{"path": "a", "op": "exists", "value": True}], "leave out the value"),
        ([{"path": "a", "op": "<", "value": "10"}], "compares numbers"),
        ([{"path": "a", "op": ">", "value": True}], "compares numbers"),
        ([{"path": "a", "op": "==", "value": "x" * 2000}], "limited to 1024 bytes"),
        ([{"path": "a", "op": "exists", "extra": 1}], "unknown key(s) 'extra'"),
        ([{"path": "a", "op": "exists"}] * 21, "At most 20 JSON assertions"),
    ],
)
def test_a_bad_assertion_is_a_field_error_naming_it(user, assertions, word):
    errors = refused(user, **HTTP, json_assertions=assertions)

    assert any(word in text for text in errors["json_assertions"]), errors


def test_every_bad_assertion_is_reported_by_number(user):
    assertions = [
        {"path": "ok", "op": "exists"},
        {"path": "a.", "op": "exists"},
        {"path": "b", "op": "=~"},
    ]

    errors = refused(user, **HTTP, json_assertions=assertions)["json_assertions"]

    assert [text.split(":")[0] for text in errors] == ["Assertion 2", "Assertion 3"]


def test_the_api_refuses_a_bad_assertion_with_a_400_naming_the_field(user):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")

    response = api.post(
        "/api/v1/monitors/",
        {**HTTP, "json_assertions": [{"path": "a", "op": "=="}]},
        format="json",
    )

    assert response.status_code == 400
    assert "needs a value" in response.json()["json_assertions"][0]
    assert not Monitor.objects.exists()


def test_the_dashboard_form_takes_assertions_as_json_and_an_empty_box_as_none(client, user):
    monitor = monitor_create(owner=user, **HTTP, json_assertions=GOOD_ASSERTIONS[:1])
    client.force_login(user)
    data = {
        "name": monitor.name,
        "kind": "http",
        "url": monitor.url,
        "method": "GET",
        "headers": "{}",
        "body": "",
        "expected_status_codes": "200-299",
        "keyword": "",
        "keyword_mode": "present",
        "interval_seconds": 60,
        "timeout_seconds": 10,
        "confirm_failures": 2,
        "recover_successes": 1,
        "tags": "",
    }

    left_out = client.post(f"/dashboard/monitors/{monitor.pk}/edit/", data)
    kept = Monitor.objects.get().json_assertions
    cleared = client.post(
        f"/dashboard/monitors/{monitor.pk}/edit/", {**data, "json_assertions": ""}
    )

    assert left_out.status_code == cleared.status_code == 302
    assert kept == GOOD_ASSERTIONS[:1]  # a form that leaves the box out keeps them
    assert Monitor.objects.get().json_assertions == []


PING: dict[str, Any] = {"name": "Router", "kind": "ping", "url": "ping://router.example.test"}


@pytest.mark.parametrize(
    "url",
    [
        "ping://router.example.test",
        "ping://203.0.113.7",
        "ping://[2001:db8::7]",
        "ping://bücher.example",
        "ping://router.example.test/",
    ],
)
def test_a_ping_target_names_a_host(user, url):
    assert monitor_create(owner=user, **{**PING, "url": url}).pk


@pytest.mark.parametrize(
    ("url", "word"),
    [
        ("router.example.test", "ping://host"),
        ("https://router.example.test/", "ping://host"),
        ("ping://router.example.test:7", "ping://host"),
        ("ping://router.example.test/path", "ping://host"),
        ("ping://user@router.example.test", "ping://host"),
        ("ping://[router.example.test]", "ping://host"),
        ("ping://rou$ter.example.test", "not a host name"),
    ],
)
def test_a_ping_target_of_another_form_is_refused(user, url, word):
    errors = refused(user, **{**PING, "url": url})

    assert any(word in text for text in errors["url"])


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"ping_count": 0}, "ping_count"),
        ({"ping_count": 11}, "ping_count"),
        ({"ping_max_loss_percent": 100}, "ping_max_loss_percent"),
        ({"ping_max_rtt_ms": 0}, "ping_max_rtt_ms"),
        ({"ping_max_rtt_ms": 60001}, "ping_max_rtt_ms"),
    ],
)
def test_ping_settings_out_of_range_are_refused(user, fields, field):
    assert field in refused(user, **PING, **fields)


def test_a_ping_monitor_has_three_echo_requests_and_allows_half_lost_by_default(user):
    monitor = monitor_create(owner=user, **PING)

    spec = spec_from_monitor(Monitor.objects.get(pk=monitor.pk))
    assert (spec.kind, spec.ping_count, spec.ping_max_loss_percent, spec.ping_max_rtt_ms) == (
        "ping",
        3,
        50,
        None,
    )


def test_an_edit_to_a_ping_field_reschedules(user):
    monitor = monitor_create(owner=user, **PING)
    Monitor.objects.filter(pk=monitor.pk).update(next_check_at="2099-01-01T00:00:00Z")

    monitor_update(monitor=Monitor.objects.get(pk=monitor.pk), ping_max_rtt_ms=250)

    assert Monitor.objects.get(pk=monitor.pk).next_check_at.year < 2099


def test_the_api_creates_and_shows_a_ping_monitor(user):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    body = {**PING, "ping_count": 5, "ping_max_loss_percent": 20, "ping_max_rtt_ms": 150}

    created = api.post("/api/v1/monitors/", body, format="json")

    assert created.status_code == 201, created.content
    shown = api.get(f"/api/v1/monitors/{created.json()['id']}/").json()
    assert {name: shown[name] for name in body} == body


def test_the_dashboard_form_takes_an_empty_round_trip_limit_as_none(client, user):
    monitor = monitor_create(owner=user, **PING, ping_max_rtt_ms=100)
    client.force_login(user)
    data = {
        "name": monitor.name,
        "kind": "ping",
        "url": monitor.url,
        "method": "GET",
        "headers": "{}",
        "expected_status_codes": "200-299",
        "keyword_mode": "present",
        "interval_seconds": 60,
        "timeout_seconds": 10,
        "confirm_failures": 2,
        "recover_successes": 1,
        "ping_count": 4,
        "ping_max_rtt_ms": "",
        "tags": "",
    }

    response = client.post(f"/dashboard/monitors/{monitor.pk}/edit/", data)

    assert response.status_code == 302
    stored = Monitor.objects.get()
    assert (stored.ping_count, stored.ping_max_loss_percent, stored.ping_max_rtt_ms) == (
        4,
        50,
        None,
    )
