"""DNS monitors against a real DNS server on 127.0.0.1 (tests/dns_server.py): each record
type matching and not, each match mode, NXDOMAIN, an empty answer, SERVFAIL, REFUSED,
a resolver that never answers, and the SSRF guard refusing a resolver before a packet
is sent."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from monitors.probes import ProbeSpec, TargetPolicy, check_batch
from monitors.probes.loop import probe_loop_run
from telemetry.records import FailureKind
from tests.dns_server import silent_resolver
from tests.targets import closed_port


def dns_spec(name, *, resolver, record_type="A", expected=(), match=None, timeout=3.0):
    if match is None:
        match = "any" if expected else "resolves"
    return ProbeSpec(
        monitor_id=1,
        kind="dns",
        url=f"dns://{name}",
        timeout_seconds=timeout,
        dns_record_type=record_type,
        dns_resolver=resolver,
        dns_expected=tuple(expected),
        dns_match=match,
    )


def check(name, *, policy, **fields):
    spec = dns_spec(name, **fields)
    [result] = asyncio.run(check_batch([(spec, dt.datetime.now(dt.UTC))], policy=policy))
    return result


# (record type, name, values that match its answer, values that do not, the answer as a
# mismatch message shows it)
RECORDS = [
    ("A", "a.test", ["192.0.2.1"], ["192.0.2.7"], "192.0.2.1, 192.0.2.2"),
    ("AAAA", "aaaa.test", ["2001:DB8:0:0::1"], ["2001:db8::2"], "2001:db8::1"),
    ("CNAME", "cname.test", ["target.example.test"], ["other.test"], "target.example.test"),
    ("MX", "mx.test", ["10 mail.test."], ["10 backup.test"], "10 mail.test, 20 backup.test"),
    ("TXT", "txt.test", ["v=spf1 -all"], ["v=spf1 +all"], '"part one, part two", "v=spf1 -all"'),
    ("NS", "ns.test", ["ns2.test"], ["ns3.test"], "ns1.test, ns2.test"),
    ("SOA", "soa.test", ["ns1.test hostmaster.test"], ["ns9.test hostmaster.test"],
     "ns1.test hostmaster.test 2024010101 7200 3600 1209600 300"),
    ("CAA", "caa.test", ['0 issue "letsencrypt.org"'], ['0 issue "pki.goog"'],
     '0 issue "letsencrypt.org"'),
]  # fmt: skip
IDS = [record[0] for record in RECORDS]


@pytest.mark.parametrize(("record_type", "name", "good", "_bad", "_shown"), RECORDS, ids=IDS)
def test_a_record_that_matches_is_up(
    dns_server, loopback_policy, record_type, name, good, _bad, _shown
):
    result = check(
        name, policy=loopback_policy, resolver=dns_server.address, record_type=record_type,
        expected=good,
    )  # fmt: skip

    assert result.ok, result.error
    assert result.failure is None and result.status_code is None
    assert result.dns_ms is not None and result.dns_ms <= result.duration_ms
    assert (f"{name}.", record_type) in dns_server.queries


@pytest.mark.parametrize(("record_type", "name", "_good", "bad", "shown"), RECORDS, ids=IDS)
def test_a_record_that_does_not_match_is_a_mismatch_saying_what_came_back(
    dns_server, loopback_policy, record_type, name, _good, bad, shown
):
    result = check(
        name, policy=loopback_policy, resolver=dns_server.address, record_type=record_type,
        expected=bad,
    )  # fmt: skip

    assert result.failure == FailureKind.MISMATCH
    assert result.error.startswith(f"got {record_type} {shown}; expected any of ")


def test_a_mismatch_message_lists_the_answer_and_the_expected_values(dns_server, loopback_policy):
    result = check(
        "a.test", policy=loopback_policy, resolver=dns_server.address, expected=["192.0.2.7"]
    )

    assert result.error == "got A 192.0.2.1, 192.0.2.2; expected any of 192.0.2.7"


@pytest.mark.parametrize(
    ("record_type", "name", "expected"),
    [
        ("CNAME", "cname.test", ["TARGET.example.test."]),  # case and the final dot
        ("MX", "mx.test", ["20 BACKUP.test", "10 mail.test"]),
        ("NS", "ns.test", ["ns1.test.", "ns2.TEST"]),
        ("TXT", "txt.test", ['"part one, " "part two"']),  # zone-file quoting, joined
        ("TXT", "txt.test", ["part one, part two"]),
        ("AAAA", "aaaa.test", ["2001:0db8:0000:0000:0000:0000:0000:0001"]),
        ("SOA", "soa.test", ["ns1.test. hostmaster.test. 2024010101 7200 3600 1209600 300"]),
        ("CAA", "caa.test", ["0 ISSUE letsencrypt.org"]),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_answers_are_compared_normalised(dns_server, loopback_policy, record_type, name, expected):
    result = check(
        name, policy=loopback_policy, resolver=dns_server.address, record_type=record_type,
        expected=expected, match="all",
    )  # fmt: skip

    assert result.ok, result.error


def test_txt_values_keep_their_case(dns_server, loopback_policy):
    result = check(
        "txt.test", policy=loopback_policy, resolver=dns_server.address, record_type="TXT",
        expected=["V=SPF1 -ALL"],
    )  # fmt: skip

    assert result.failure == FailureKind.MISMATCH
    assert '"v=spf1 -all"' in result.error and '"part one, part two"' in result.error


# a.test answers 192.0.2.1 and 192.0.2.2.
@pytest.mark.parametrize(
    ("match", "expected", "ok"),
    [
        ("resolves", [], True),
        ("any", ["192.0.2.9", "192.0.2.2"], True),
        ("any", ["192.0.2.9"], False),
        ("all", ["192.0.2.1"], True),  # the answer may hold more
        ("all", ["192.0.2.1", "192.0.2.9"], False),
        ("exact", ["192.0.2.2", "192.0.2.1"], True),
        ("exact", ["192.0.2.1"], False),  # the answer holds one more
        ("exact", ["192.0.2.1", "192.0.2.2", "192.0.2.3"], False),
    ],
)
def test_each_match_mode(dns_server, loopback_policy, match, expected, ok):
    result = check(
        "a.test", policy=loopback_policy, resolver=dns_server.address, expected=expected,
        match=match,
    )  # fmt: skip

    assert result.ok is ok, result.error
    if not ok:
        assert result.failure == FailureKind.MISMATCH
        word = {"any": "any of", "all": "all of", "exact": "exactly"}[match]
        assert f"expected {word} " in result.error


def test_an_soa_given_by_its_first_fields_ignores_the_serial(dns_server, loopback_policy):
    result = check(
        "soa.test", policy=loopback_policy, resolver=dns_server.address, record_type="SOA",
        expected=["ns1.test hostmaster.test"], match="exact",
    )  # fmt: skip

    assert result.ok, result.error


def test_a_name_that_does_not_exist_is_nxdomain(dns_server, loopback_policy):
    result = check("missing.test", policy=loopback_policy, resolver=dns_server.address)

    assert result.failure == FailureKind.NXDOMAIN
    assert result.error == "missing.test does not exist (NXDOMAIN)"


def test_a_name_without_records_of_the_type_is_no_answer(dns_server, loopback_policy):
    result = check(
        "a.test", policy=loopback_policy, resolver=dns_server.address, record_type="AAAA"
    )

    assert result.failure == FailureKind.NO_ANSWER
    assert result.error == "no AAAA record for a.test (NOERROR, empty answer)"


def test_a_resolver_error_is_servfail(dns_server, loopback_policy):
    result = check("broken.test", policy=loopback_policy, resolver=dns_server.address)

    assert result.failure == FailureKind.SERVFAIL
    assert result.error == f"resolver {dns_server.address} answered SERVFAIL"


def test_a_resolver_that_refuses_the_query_is_refused(dns_server, loopback_policy):
    result = check("closed.test", policy=loopback_policy, resolver=dns_server.address)

    assert result.failure == FailureKind.REFUSED
    assert result.error == f"resolver {dns_server.address} refused the query (REFUSED)"


def test_a_resolver_that_does_not_answer_times_out(loopback_policy):
    with silent_resolver() as address:
        result = check("a.test", policy=loopback_policy, resolver=address, timeout=1)

    assert result.failure == FailureKind.TIMEOUT
    assert result.error == "no answer within 1 s"
    assert 950 <= result.duration_ms < 2000


def test_a_resolver_port_nothing_listens_on_times_out(loopback_policy):
    # UDP: the port's refusal (ICMP) does not reach an unconnected socket.
    result = check(
        "a.test", policy=loopback_policy, resolver=f"127.0.0.1:{closed_port()}", timeout=1
    )

    assert result.failure == FailureKind.TIMEOUT


@pytest.mark.parametrize("resolver", ["10.0.0.53", "169.254.169.254", "[fd00::53]:53"])
def test_the_guard_refuses_a_private_resolver_without_sending(resolver):
    result = check("a.test", policy=TargetPolicy(), resolver=resolver, timeout=5)

    assert result.failure == FailureKind.BLOCKED
    assert "private or reserved" in result.error
    assert result.duration_ms < 100  # no network time: nothing was sent
    assert result.dns_ms is None


def test_the_guard_refuses_a_loopback_resolver_unless_allowed(dns_server, loopback_policy):
    asked = len(dns_server.queries)

    refused = check("a.test", policy=TargetPolicy(), resolver=dns_server.address)
    assert refused.failure == FailureKind.BLOCKED
    assert len(dns_server.queries) == asked  # the server saw nothing

    allowed = check("a.test", policy=loopback_policy, resolver=dns_server.address)
    assert allowed.ok, allowed.error


def test_a_dns_check_runs_on_the_probe_loop(dns_server, loopback_policy):
    spec = dns_spec("mx.test", resolver=dns_server.address, record_type="MX",
                    expected=["10 mail.test"])  # fmt: skip

    [result] = probe_loop_run(
        check_batch([(spec, dt.datetime.now(dt.UTC))], policy=loopback_policy)
    )

    assert result.ok, result.error


def test_dns_and_http_checks_share_a_batch(dns_server, target, loopback_policy):
    now = dt.datetime.now(dt.UTC)
    items = [
        (dns_spec("a.test", resolver=dns_server.address, expected=["192.0.2.1"]), now),
        (ProbeSpec(monitor_id=2, kind="http", url=target.url("/ok")), now),
        (dns_spec("missing.test", resolver=dns_server.address), now),
    ]

    results = asyncio.run(check_batch(items, policy=loopback_policy))

    assert [r.failure for r in results] == [None, None, FailureKind.NXDOMAIN]
