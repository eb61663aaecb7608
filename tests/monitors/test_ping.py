"""Ping monitors: echo requests to 127.0.0.1 and ::1 (nothing leaves the machine), the
SSRF guard refusing before anything is sent, and the verdict on loss and round trip
judged on icmplib's own result objects (loopback cannot be made to drop echoes)."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket

import icmplib
import pytest

from monitors.probes import ProbeSpec, TargetPolicy, check_batch
from monitors.probes import ping as ping_probe
from monitors.probes.loop import probe_loop_run
from monitors.validators import MAX_PING_COUNT, MIN_PING_COUNT, ping_min_timeout
from sentinel.checks import check_icmp_sockets
from telemetry.records import FailureKind
from tests.monitors.test_guard import FakeResolver


def ping_spec(url, **fields):
    return ProbeSpec(kind="ping", url=url, **{"monitor_id": 1, "timeout_seconds": 3.0, **fields})


def check(url, *, policy, resolver=None, **fields):
    items = [(ping_spec(url, **fields), dt.datetime.now(dt.UTC))]
    return asyncio.run(check_batch(items, policy=policy, resolver=resolver))[0]


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.fixture
def pings(monkeypatch):
    """Every address echo requests were sent to; the real icmplib still sends them."""
    sent: list[str] = []
    real = icmplib.async_ping

    async def spy(address, **kwargs):
        sent.append(address)
        return await real(address, **kwargs)

    monkeypatch.setattr(ping_probe.icmplib, "async_ping", spy)
    return sent


def test_a_ping_of_127_0_0_1_is_up_with_its_figures_in_the_message(loopback_policy, pings):
    result = check("ping://127.0.0.1", policy=loopback_policy)

    assert result.ok, result.error
    assert pings == ["127.0.0.1"]
    figures = ping_probe.parse(result.error)
    assert figures is not None
    assert (figures.sent, figures.received) == (3, 3)
    assert figures.min_ms is not None and figures.avg_ms is not None and figures.max_ms
    assert figures.min_ms <= figures.avg_ms <= figures.max_ms
    assert abs(result.duration_ms - figures.avg_ms) <= 1  # the mean round trip, not the wait
    assert result.error.startswith("0 of 3 echo requests lost (0 %), round trip min/avg/max")


@pytest.mark.skipif(not ipv6_loopback(), reason="this machine has no IPv6 loopback (::1)")
def test_a_ping_of_ipv6_loopback_is_up(loopback_policy, pings):
    result = check("ping://[::1]", policy=loopback_policy, ping_count=2)

    assert result.ok, result.error
    assert pings == ["::1"]
    figures = ping_probe.parse(result.error)
    assert figures is not None and figures.received == 2


def test_a_name_is_resolved_by_the_engines_resolver(loopback_policy, pings):
    resolver = FakeResolver({"box.example": [["127.0.0.1"]]})

    result = check("ping://box.example", policy=loopback_policy, resolver=resolver, ping_count=1)

    assert result.ok, result.error
    assert resolver.lookups == ["box.example"]
    assert pings == ["127.0.0.1"]


@pytest.mark.parametrize("address", ["10.0.0.5", "169.254.169.254", "127.0.0.1", "fd00::1"])
def test_the_guard_refuses_a_name_that_resolves_to_a_private_address_before_sending(address, pings):
    resolver = FakeResolver({"box.example": [[address]]})

    result = check("ping://box.example", policy=TargetPolicy(), resolver=resolver)

    assert result.failure == FailureKind.BLOCKED
    assert "private or reserved" in result.error
    assert pings == []


def test_the_guard_refuses_a_loopback_literal_unless_allowed(pings):
    result = check("ping://127.0.0.1", policy=TargetPolicy())

    assert result.failure == FailureKind.BLOCKED
    assert pings == []


def test_every_address_of_a_name_is_judged(loopback_policy, pings):
    resolver = FakeResolver({"box.example": [["127.0.0.1", "10.0.0.5"]]})

    result = check("ping://box.example", policy=loopback_policy, resolver=resolver)

    assert result.failure == FailureKind.BLOCKED
    assert pings == []


def test_a_ping_check_runs_on_the_probe_loop(loopback_policy):
    spec = ping_spec("ping://127.0.0.1", ping_count=2)

    [result] = probe_loop_run(
        check_batch([(spec, dt.datetime.now(dt.UTC))], policy=loopback_policy)
    )

    assert result.ok, result.error


def test_pings_and_http_checks_share_a_batch(target, loopback_policy):
    now = dt.datetime.now(dt.UTC)
    items = [
        (ping_spec("ping://127.0.0.1", monitor_id=1), now),
        (ProbeSpec(monitor_id=2, kind="http", url=target.url("/ok")), now),
        (ping_spec("ping://127.0.0.1", monitor_id=3, ping_max_rtt_ms=1000), now),
    ]

    results = asyncio.run(check_batch(items, policy=loopback_policy))

    assert [r.ok for r in results] == [True, True, True]


def test_no_echo_reply_is_a_timeout_that_lasts_its_wait(loopback_policy, monkeypatch):
    # Loopback always answers: icmplib is made to wait and hear nothing, as it does
    # for a host that is down. Nothing is sent.
    async def unanswered(address, *, count, interval, timeout, privileged):
        await asyncio.sleep(0.3)
        return icmplib.Host(address, count, [])

    monkeypatch.setattr(ping_probe.icmplib, "async_ping", unanswered)

    result = check("ping://127.0.0.1", policy=loopback_policy, timeout_seconds=2.0)

    assert result.failure == FailureKind.TIMEOUT
    assert result.error == "3 of 3 echo requests lost (100 %): no echo reply within 2 s"
    assert 300 <= result.duration_ms < 1000


def test_a_worker_that_cannot_open_an_icmp_socket_says_why(loopback_policy, monkeypatch, pings):
    why = "this probe worker cannot send echo requests: it is not root"
    monkeypatch.setattr(ping_probe, "icmp_unavailable", lambda family=socket.AF_INET: why)

    result = check("ping://127.0.0.1", policy=loopback_policy)

    assert (result.failure, result.error) == (FailureKind.INTERNAL, why)
    assert pings == []


def test_the_system_check_warns_when_no_icmp_socket_opens(monkeypatch):
    import sentinel.checks

    assert check_icmp_sockets(None) == []  # the tests run as root, or may use datagrams

    monkeypatch.setattr(sentinel.checks, "icmp_unavailable", lambda: "no ICMP here")
    [warning] = check_icmp_sockets(None)

    assert warning.id == "sentinel.W001"
    assert "Ping monitors will fail on this host: no ICMP here" in warning.msg
    assert "ping_group_range" in (warning.hint or "")


# --- the verdict, on icmplib's result objects -------------------------------------


def judged(rtts, *, sent=3, **fields):
    return ping_probe.judge(ping_spec("ping://192.0.2.1", **fields), icmplib.Host("x", sent, rtts))


def test_every_reply_is_up_with_the_mean_round_trip():
    verdict = judged([10.0, 20.0, 30.0])

    assert (verdict.ok, verdict.failure, verdict.rtt_ms) == (True, None, 20.0)
    assert verdict.message == "0 of 3 echo requests lost (0 %), round trip min/avg/max 10/20/30 ms"


def test_one_lost_echo_of_three_is_within_the_default_allowance():
    verdict = judged([10.0, 20.0])

    assert verdict.ok
    assert verdict.message.startswith("1 of 3 echo requests lost (33 %)")


def test_two_lost_of_three_is_loss():
    verdict = judged([12.5])

    assert verdict.failure == FailureKind.LOSS
    assert verdict.rtt_ms == 12.5
    assert verdict.message == (
        "2 of 3 echo requests lost (67 %, over the 50 % allowed), "
        "round trip min/avg/max 12.5/12.5/12.5 ms"
    )


def test_with_no_allowance_any_loss_fails():
    assert judged([1.0, 1.0], ping_max_loss_percent=0).failure == FailureKind.LOSS
    assert judged([1.0, 1.0, 1.0], ping_max_loss_percent=0).ok


def test_exactly_the_allowed_share_lost_is_up():
    assert judged([1.0], sent=2, ping_max_loss_percent=50).ok


def test_every_echo_lost_is_a_timeout_whatever_the_allowance():
    verdict = judged([], ping_max_loss_percent=99, timeout_seconds=5.0)

    assert (verdict.failure, verdict.rtt_ms) == (FailureKind.TIMEOUT, None)
    assert verdict.message == "3 of 3 echo requests lost (100 %): no echo reply within 5 s"


def test_a_mean_round_trip_over_the_limit_is_slow():
    verdict = judged([120.0, 180.0, 240.0], ping_max_rtt_ms=150)

    assert verdict.failure == FailureKind.SLOW
    assert verdict.message == (
        "0 of 3 echo requests lost (0 %), round trip min/avg/max 120/180/240 ms; "
        "the mean is over 150 ms"
    )
    assert judged([120.0, 180.0, 240.0], ping_max_rtt_ms=180).ok  # at the limit: up


def test_loss_is_reported_before_slowness():
    assert judged([500.0], ping_max_rtt_ms=100).failure == FailureKind.LOSS


@pytest.mark.parametrize(
    ("message", "figures"),
    [
        (
            "0 of 3 echo requests lost (0 %), round trip min/avg/max 0.041/0.052/0.067 ms",
            (3, 3, 0.041, 0.052, 0.067),
        ),
        (
            "2 of 3 echo requests lost (67 %, over the 50 % allowed), round trip "
            "min/avg/max 12.5/12.5/12.5 ms",
            (3, 1, 12.5, 12.5, 12.5),
        ),
        (
            "3 of 3 echo requests lost (100 %): no echo reply within 5 s",
            (3, 0, None, None, None),
        ),
    ],
)
def test_the_figures_are_read_back_from_the_message(message, figures):
    read = ping_probe.parse(message)

    assert read is not None
    assert (read.sent, read.received, read.min_ms, read.avg_ms, read.max_ms) == figures


def test_a_message_without_figures_reads_as_none():
    assert ping_probe.parse("refused 10.0.0.5: 10.0.0.5 is a private or reserved address") is None


@pytest.mark.parametrize("count", range(MIN_PING_COUNT, MAX_PING_COUNT + 1))
def test_the_shortest_timeout_leaves_each_echo_about_half_a_second(count):
    spec = ping_spec("ping://127.0.0.1", ping_count=count, timeout_seconds=ping_min_timeout(count))

    assert ping_probe.echo_wait(spec, spent=0.01) >= 0.49
