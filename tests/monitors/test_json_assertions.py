"""JSON assertions on HTTP checks, on both HTTP paths, against a local target serving
JSON (tests/targets.py, ``/json``); and the comparison rules on their own."""

from __future__ import annotations

import asyncio
import datetime as dt
from urllib.parse import urlencode

import pytest

from monitors.probes import ProbeSpec, check_batch
from monitors.probes.jsonbody import assertion_failure, json_equal, parse_json
from monitors.probes.spec import JsonAssertion
from telemetry.records import FailureKind
from tests.targets import STATUS_DOCUMENT

KIB = 1024


def check(url, *, policy, assertions, **fields):
    spec = ProbeSpec(
        monitor_id=1,
        kind="http",
        url=url,
        timeout_seconds=5,
        json_assertions=tuple(JsonAssertion(*a) for a in assertions),
        **fields,
    )
    [result] = asyncio.run(check_batch([(spec, dt.datetime.now(dt.UTC))], policy=policy))
    return result


def document(target, name="status", **query):
    return target.url(f"/json?{urlencode({'name': name, **query})}")


HOLDING = [
    ("status.indicator", "==", "none"),
    ("status.indicator", "!=", "major"),
    ("latency_ms", "<", 500),
    ("latency_ms", ">", 100),
    ("regions", "contains", "eu"),
    ("status.description", "contains", "Operational"),
    ("status", "contains", "indicator"),
    ("components[?name=='API'].status | [0]", "==", "operational"),
    ("healthy", "==", True),
    ("count", "==", 0.0),
    ("error", "==", None),
    ("version", "exists"),
    ("length(components)", "==", 2),
]

# (assertion, the message of the failed check)
FAILING = [
    (("status.indicator", "==", "minor"), 'status.indicator: expected == "minor", got "none"'),
    (("status.indicator", "!=", "none"), 'status.indicator: expected != "none", got "none"'),
    (("latency_ms", "<", 100), "latency_ms: expected < 100, got 120"),
    (("latency_ms", ">", 500), "latency_ms: expected > 500, got 120"),
    (("regions", "contains", "ap"), 'regions: expected to contain "ap", got ["eu", "us"]'),
    (
        ("components[?name=='Web'].status | [0]", "==", "operational"),
        "components[?name=='Web'].status | [0]: expected == \"operational\", "
        'got "degraded_performance"',
    ),
    (("uptime", "exists"), "uptime: expected to exist, got null"),
    (("version", ">", 2), 'version: cannot compare "2.4.1" > 2'),
    (("count", "==", False), "count: expected == false, got 0"),
    (("healthy", "==", 1), "healthy: expected == 1, got true"),
    (("latency_ms", "==", "120"), 'latency_ms: expected == "120", got 120'),
]


@pytest.mark.usefixtures("http_path")
class TestOnBothPaths:
    def test_a_body_that_meets_every_assertion_is_up(self, target, loopback_policy):
        result = check(document(target), policy=loopback_policy, assertions=HOLDING)

        assert result.ok, result.error
        assert result.status_code == 200

    @pytest.mark.parametrize(("assertion", "message"), FAILING, ids=[str(f[0][0]) for f in FAILING])
    def test_a_failed_assertion_names_its_path_the_expected_and_the_actual_value(
        self, target, loopback_policy, assertion, message
    ):
        result = check(
            document(target), policy=loopback_policy, assertions=[*HOLDING[:2], assertion]
        )

        assert result.failure == FailureKind.ASSERTION
        assert result.error == message
        assert result.status_code == 200

    def test_the_first_failed_assertion_is_reported(self, target, loopback_policy):
        assertions = [("count", ">", 1), ("status.indicator", "==", "minor")]

        result = check(document(target), policy=loopback_policy, assertions=assertions)

        assert result.error == "count: expected > 1, got 0"

    def test_a_body_that_is_not_json_fails_saying_so(self, target, loopback_policy):
        result = check(
            document(target, "html"), policy=loopback_policy, assertions=[("a", "exists")]
        )

        assert result.failure == FailureKind.ASSERTION
        assert result.error.startswith("the body is not JSON: ")

    def test_an_empty_body_is_not_json(self, target, loopback_policy):
        result = check(
            document(target, "empty"), policy=loopback_policy, assertions=[("a", "exists")]
        )

        assert result.error == "the body is not JSON: the body is empty"

    def test_a_body_longer_than_the_limit_is_not_read_whole(self, target, loopback_policy):
        url = target.url(f"/long?size={300 * KIB}&at=0&word=x")

        result = check(url, policy=loopback_policy, assertions=[("a", "exists")], max_body_kib=64)

        assert result.failure == FailureKind.ASSERTION
        assert result.error == (
            "the body is longer than 64 KiB (the page limit), so its JSON was not read whole"
        )

    def test_the_limit_stops_a_huge_body(self, target, loopback_policy):
        # /big sends 13 MB; the default limit (1 MiB) stops the read long before.
        result = check(target.url("/big"), policy=loopback_policy, assertions=[("a", "exists")])

        assert "longer than 1024 KiB" in result.error

    @pytest.mark.parametrize(("name", "city"), [("latin-1", "Zürich"), ("utf-16", "東京")])
    def test_the_body_is_decoded_as_the_page_says(self, target, loopback_policy, name, city):
        result = check(
            document(target, name), policy=loopback_policy, assertions=[("city", "==", city)]
        )

        assert result.ok, result.error

    def test_a_gzipped_body_is_read(self, target, loopback_policy):
        result = check(
            document(target, gzip=1),
            policy=loopback_policy,
            assertions=[("status.indicator", "==", "none")],
        )

        assert result.ok, result.error

    def test_a_keyword_and_assertions_are_both_judged(self, target, loopback_policy):
        url = document(target)

        both = check(
            url, policy=loopback_policy, assertions=HOLDING, keyword="Operational"
        )  # the keyword is found early; the body is still read whole
        keyword = check(url, policy=loopback_policy, assertions=HOLDING, keyword="outage")
        assertion = check(
            url, policy=loopback_policy, assertions=[("count", ">", 1)], keyword="Operational"
        )

        assert both.ok, both.error
        assert keyword.failure == FailureKind.KEYWORD
        assert assertion.failure == FailureKind.ASSERTION

    def test_an_unexpected_status_is_a_status_failure(self, target, loopback_policy):
        result = check(
            target.url("/status/503"), policy=loopback_policy, assertions=[("a", "exists")]
        )

        assert result.failure == FailureKind.STATUS


def test_a_post_check_with_assertions_takes_aiohttps_path(target, loopback_policy):
    result = check(
        target.url("/echo"),
        policy=loopback_policy,
        method="POST",
        body="ping",
        assertions=[("method", "==", "POST"), ("body", "==", "ping")],
    )

    assert result.ok, result.error


def test_a_stored_assertion_that_is_not_an_expression_fails_the_check_not_the_batch():
    message = assertion_failure(JsonAssertion("a.", "=="), STATUS_DOCUMENT)

    assert message == "invalid assertion 'a.': unexpected end at column 2"


def test_a_function_given_the_wrong_type_fails_with_its_reason():
    message = assertion_failure(JsonAssertion("length(count)", ">", 1), STATUS_DOCUMENT)

    assert message is not None and message.startswith("length(count): ")


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        (1, 1.0, True),
        (True, 1, False),
        (False, 0, False),
        ("1", 1, False),
        (None, None, True),
        ([1, "a"], [1.0, "a"], True),
        ([1, 2], [2, 1], False),
        ({"a": [True]}, {"a": [True]}, True),
        ({"a": 1}, {"a": 1, "b": 2}, False),
    ],
)
def test_json_equality_converts_nothing(a, b, equal):
    assert json_equal(a, b) is equal


@pytest.mark.parametrize(
    ("text", "reason"),
    [("", "the body is empty"), ("{'a': 1}", "line 1 column 2"), ("[1, 2", "line 1 column 6")],
)
def test_a_body_that_is_not_json_says_where(text, reason):
    with pytest.raises(ValueError, match=reason):
        parse_json(text)


@pytest.mark.usefixtures("http_path")
def test_a_body_longer_than_the_encoding_sample_is_still_read_as_utf_8(target, loopback_policy):
    result = check(
        document(target, "long-utf-8"),
        policy=loopback_policy,
        assertions=[("city", "==", "Zürich")],
    )

    assert result.ok, result.error
