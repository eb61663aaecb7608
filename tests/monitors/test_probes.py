"""The probe engine against real local servers: each failure kind, timings, limits."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import time

import pytest
from aiohttp.abc import AbstractResolver

from monitors.probes import ProbeSpec, check_batch
from telemetry.records import FailureKind
from tests.targets import closed_port

# Every check here runs on both HTTP paths (see the fixture).
pytestmark = pytest.mark.usefixtures("http_path")


def run(specs, *, policy, tls=None):
    now = dt.datetime.now(dt.UTC)
    return asyncio.run(check_batch([(spec, now) for spec in specs], policy=policy, ssl_context=tls))


def http(url, **kwargs):
    return ProbeSpec(monitor_id=kwargs.pop("monitor_id", 1), kind="http", url=url, **kwargs)


def test_it_reports_a_healthy_page_with_status_and_phases(target, loopback_policy):
    [result] = run([http(target.url("/ok"), keyword="operational")], policy=loopback_policy)

    assert result.ok and result.failure is None
    assert result.status_code == 200
    assert result.connect_ms is not None and result.ttfb_ms is not None
    assert result.duration_ms >= result.ttfb_ms


def test_it_sends_method_headers_and_body(target, loopback_policy):
    spec = http(
        target.url("/echo"),
        method="POST",
        headers={"X-Probe": "yes"},
        body="ping-body",
        keyword='"body": "ping-body"',
    )
    [result] = run([spec], policy=loopback_policy)

    assert result.ok, result.error


def test_it_classifies_an_unexpected_status(target, loopback_policy):
    [result] = run([http(target.url("/status/503"))], policy=loopback_policy)

    assert not result.ok
    assert result.failure == FailureKind.STATUS
    assert result.status_code == 503
    assert "503" in result.error


def test_an_expected_error_status_is_ok(target, loopback_policy):
    spec = http(target.url("/status/404"), expected_status=((404, 404),))

    assert run([spec], policy=loopback_policy)[0].ok


@pytest.mark.parametrize(("must_appear", "keyword"), [(True, "missing-word"), (False, "systems")])
def test_it_classifies_a_keyword_failure(target, loopback_policy, must_appear, keyword):
    spec = http(target.url("/ok"), keyword=keyword, keyword_must_appear=must_appear)
    [result] = run([spec], policy=loopback_policy)

    assert result.failure == FailureKind.KEYWORD
    assert result.status_code == 200
    assert keyword in result.error


def test_it_classifies_a_timeout_on_a_slow_target(target, loopback_policy):
    [result] = run([http(target.url("/slow?s=3"), timeout_seconds=1)], policy=loopback_policy)

    assert result.failure == FailureKind.TIMEOUT
    assert 950 <= result.duration_ms < 2000


def test_it_classifies_a_refused_connection(loopback_policy):
    [result] = run([http(f"http://127.0.0.1:{closed_port()}/")], policy=loopback_policy)

    assert result.failure == FailureKind.REFUSED
    assert result.error == "connection refused"


def test_it_classifies_a_dropped_connection(target, loopback_policy):
    [result] = run([http(target.url("/drop"))], policy=loopback_policy)

    assert result.failure == FailureKind.CONNECTION
    assert result.error.startswith("connection failed")


class NoSuchName(AbstractResolver):
    """DNS that knows no names (no query leaves the machine)."""

    async def resolve(self, host, port=0, family=socket.AF_INET):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    async def close(self):
        pass


@pytest.mark.parametrize("url", ["http://no-such-host.example/", "tcp://no-such-host.example:443"])
def test_it_classifies_a_dns_failure(url, loopback_policy):
    spec = ProbeSpec(monitor_id=1, kind=url.split(":")[0], url=url)
    now = dt.datetime.now(dt.UTC)

    [result] = asyncio.run(
        check_batch([(spec, now)], policy=loopback_policy, resolver=NoSuchName())
    )

    assert result.failure == FailureKind.DNS
    assert "DNS lookup failed" in result.error


def test_it_classifies_a_redirect_loop(target, loopback_policy):
    [result] = run([http(target.url("/loop"))], policy=loopback_policy)

    assert result.failure == FailureKind.TOO_MANY_REDIRECTS


def test_it_follows_a_redirect(target, loopback_policy):
    [result] = run(
        [http(target.url("/redirect?to=/ok"), keyword="operational")], policy=loopback_policy
    )

    assert result.ok and result.status_code == 200


def test_it_classifies_a_bad_certificate(self_signed_target, loopback_policy, client_tls):
    [result] = run(
        [http(self_signed_target.tls_url("/ok"))], policy=loopback_policy, tls=client_tls
    )

    assert result.failure == FailureKind.TLS
    assert "certificate" in result.error.lower()


def test_it_records_the_certificate_expiry_of_an_https_target(target, loopback_policy, client_tls):
    [result] = run([http(target.tls_url("/ok"))], policy=loopback_policy, tls=client_tls)

    assert result.ok, result.error
    assert result.tls_expires_at is not None
    days = (result.tls_expires_at - dt.datetime.now(dt.UTC)).days
    assert 28 <= days <= 30  # the test CA signs it for 30 days


def test_the_tcp_kind_checks_that_the_port_accepts(target, loopback_policy):
    ok = ProbeSpec(monitor_id=1, kind="tcp", url=f"tcp://127.0.0.1:{target.port}")
    refused = ProbeSpec(monitor_id=2, kind="tcp", url=f"tcp://127.0.0.1:{closed_port()}")

    first, second = run([ok, refused], policy=loopback_policy)

    assert first.ok and first.connect_ms is not None
    assert second.failure == FailureKind.REFUSED


def test_the_tls_kind_records_expiry_and_refuses_a_bad_certificate(
    target, self_signed_target, loopback_policy, client_tls
):
    good = ProbeSpec(monitor_id=1, kind="tls", url=f"tls://localhost:{target.tls_port}")
    bad = ProbeSpec(monitor_id=2, kind="tls", url=f"tls://localhost:{self_signed_target.tls_port}")

    first, second = run([good, bad], policy=loopback_policy, tls=client_tls)

    assert first.ok, first.error
    assert first.tls_expires_at is not None and first.tls_ms is not None
    assert second.failure == FailureKind.TLS


def test_a_hanging_target_does_not_stall_the_batch(target, loopback_policy):
    specs = [http(target.url("/hang"), monitor_id=1, timeout_seconds=1)] + [
        http(target.url("/ok"), monitor_id=n) for n in range(2, 52)
    ]

    began = time.monotonic()
    results = run(specs, policy=loopback_policy)
    elapsed = time.monotonic() - began

    assert elapsed < 1.8  # the batch ends with the hanging check's own timeout
    assert results[0].failure == FailureKind.TIMEOUT
    assert all(r.ok for r in results[1:])
    assert [r.monitor_id for r in results] == list(range(1, 52))


def test_checks_start_at_their_slots(target, loopback_policy):
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(milliseconds=400)
    items = [(http(target.url("/ok"), monitor_id=1), soon)]

    [result] = asyncio.run(check_batch(items, policy=loopback_policy))

    assert dt.timedelta(0) <= result.started_at - soon < dt.timedelta(milliseconds=150)


class LoopbackName(AbstractResolver):
    """DNS that answers 127.0.0.1 for every name (no query leaves the machine)."""

    async def resolve(self, host, port=0, family=socket.AF_INET):
        return [
            {"hostname": host, "host": "127.0.0.1", "port": port, "family": socket.AF_INET,
             "proto": 0, "flags": socket.AI_NUMERICHOST}
        ]  # fmt: skip

    async def close(self):
        pass


def test_it_times_the_lookup_of_a_name_but_not_of_an_ip_literal(target, loopback_policy):
    named = http(f"http://probe.example:{target.port}/ok")
    literal = http(target.url("/ok"))
    now = dt.datetime.now(dt.UTC)

    by_name, by_address = asyncio.run(
        check_batch([(named, now), (literal, now)], policy=loopback_policy, resolver=LoopbackName())
    )

    assert by_name.ok and by_address.ok
    assert by_name.dns_ms is not None and by_address.dns_ms is None
    assert by_name.connect_ms is not None and by_address.connect_ms is not None
    assert by_name.ttfb_ms is not None and by_address.ttfb_ms is not None


def test_probe_batches_run_on_uvloop():
    import uvloop

    from monitors.probes.loop import probe_loop, probe_loop_run

    async def which_loop():
        return asyncio.get_running_loop()

    assert isinstance(probe_loop_run(which_loop()), uvloop.Loop)
    assert probe_loop_run(which_loop()) is probe_loop()
