"""The SSRF guard, proved with fake DNS answers: nothing is ever sent to a
non-loopback address, and every refusal happens before any connect."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import socket
from asyncio import selector_events

import pytest
from aiohttp.abc import AbstractResolver

from monitors.probes import ProbeSpec, TargetPolicy, check_batch
from telemetry.records import FailureKind

# Every check here runs on both HTTP paths (see the fixture).
pytestmark = pytest.mark.usefixtures("http_path")

PRIVATE_ANSWERS = [
    "10.0.0.5",
    "172.16.3.4",
    "192.168.1.1",
    "127.0.0.1",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",  # noqa: S104 (an answer to refuse, not a bind)
    "224.0.0.1",
    "255.255.255.255",
    "::1",
    "::",
    "fd00::1",
    "fe80::1",
    "ff02::1",
    "::ffff:10.0.0.5",
    "64:ff9b::a00:5",
]


class FakeResolver(AbstractResolver):
    """DNS that answers from a table; a list of answers is served one per lookup."""

    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        self.answers = answers
        self.lookups: list[str] = []

    async def resolve(self, host, port=0, family=socket.AF_INET):
        self.lookups.append(host)
        queue = self.answers[host]
        addresses = queue.pop(0) if len(queue) > 1 else queue[0]
        return [
            {
                "hostname": host,
                "host": address,
                "port": port,
                "family": socket.AF_INET6 if ":" in address else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
            for address in addresses
        ]

    async def close(self):
        pass


@pytest.fixture
def connects(monkeypatch):
    """Every address a check connects to; a non-loopback one fails the test."""
    seen: list[str] = []
    original = selector_events.BaseSelectorEventLoop.sock_connect

    async def sock_connect(self, sock, address):
        seen.append(address[0])
        if not ipaddress.ip_address(address[0]).is_loopback:
            raise AssertionError(f"a check tried to connect to {address[0]}")
        return await original(self, sock, address)

    monkeypatch.setattr(selector_events.BaseSelectorEventLoop, "sock_connect", sock_connect)
    return seen


def check(url, *, policy, resolver=None, kind="http"):
    spec = ProbeSpec(monitor_id=1, kind=kind, url=url, timeout_seconds=2)
    items = [(spec, dt.datetime.now(dt.UTC))]
    return asyncio.run(check_batch(items, policy=policy, resolver=resolver))[0]


@pytest.mark.parametrize("address", PRIVATE_ANSWERS)
def test_it_refuses_a_name_that_resolves_to_a_private_address(address, connects):
    resolver = FakeResolver({"target.example": [[address]]})

    result = check("http://target.example/", policy=TargetPolicy(), resolver=resolver)

    assert result.failure == FailureKind.BLOCKED, result
    assert "private or reserved" in result.error
    assert resolver.lookups == ["target.example"]
    assert connects == []


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data/", "http://[::1]:8080/"])
def test_it_refuses_a_private_ip_literal(url, connects):
    result = check(url, policy=TargetPolicy())

    assert result.failure == FailureKind.BLOCKED
    assert connects == []


def test_it_refuses_when_any_answer_is_private(connects):
    resolver = FakeResolver({"mixed.example": [["93.184.216.34", "10.0.0.5"]]})

    result = check("http://mixed.example/", policy=TargetPolicy(), resolver=resolver)

    assert result.failure == FailureKind.BLOCKED
    assert connects == []


def test_the_tcp_and_tls_kinds_are_guarded_too(connects):
    resolver = FakeResolver({"db.example": [["10.0.0.5"]]})

    for kind in ("tcp", "tls"):
        result = check(
            f"{kind}://db.example:5432", policy=TargetPolicy(), resolver=resolver, kind=kind
        )
        assert result.failure == FailureKind.BLOCKED

    assert connects == []


def test_it_refuses_a_redirect_to_a_private_address(target, loopback_policy, connects):
    resolver = FakeResolver({"internal.example": [["192.168.0.10"]]})

    literal = check(target.url("/redirect?to=http://10.0.0.5/admin"), policy=loopback_policy)
    named = check(
        target.url("/redirect?to=http://internal.example/"),
        policy=loopback_policy,
        resolver=resolver,
    )

    assert literal.failure == FailureKind.BLOCKED
    assert named.failure == FailureKind.BLOCKED
    assert set(connects) == {"127.0.0.1"}  # the first hop only


def test_it_refuses_a_dns_answer_that_changes_to_a_private_address(
    target, loopback_policy, connects
):
    # Rebinding: the same name first answers an allowed address, then a private one.
    resolver = FakeResolver({"rebind.example": [["127.0.0.1"], ["10.0.0.5"]]})
    url = f"http://rebind.example:{target.port}/ok"

    first = check(url, policy=loopback_policy, resolver=resolver)
    second = check(url, policy=loopback_policy, resolver=resolver)

    assert first.ok, first.error
    assert second.failure == FailureKind.BLOCKED
    assert resolver.lookups == ["rebind.example", "rebind.example"]
    assert connects == ["127.0.0.1"]


def test_a_public_address_is_allowed():
    assert TargetPolicy().refusal("93.184.216.34") is None
    assert TargetPolicy().refusal("2606:2800:220:1:248:1893:25c8:1946") is None


def test_the_allow_settings_lift_the_guard(settings, target, connects):
    url = target.url("/ok")
    settings.SENTINEL_ALLOW_PRIVATE_TARGETS = False
    settings.SENTINEL_ALLOWED_NETWORKS = []
    blocked = check(url, policy=TargetPolicy.from_settings())

    settings.SENTINEL_ALLOW_PRIVATE_TARGETS = True
    lifted = check(url, policy=TargetPolicy.from_settings())

    settings.SENTINEL_ALLOW_PRIVATE_TARGETS = False
    settings.SENTINEL_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    allowlisted = check(url, policy=TargetPolicy.from_settings())

    assert blocked.failure == FailureKind.BLOCKED
    assert lifted.ok and allowlisted.ok
    assert TargetPolicy(allow_private=True).refusal("10.0.0.5") is None
    assert TargetPolicy.from_settings().refusal("10.0.0.5") is not None  # only 127/8 listed
