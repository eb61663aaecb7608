"""The SSRF guard: a check may only connect to a public address.

Users type URLs; without a guard a monitor is a way to make our workers fetch
``http://169.254.169.254/`` (cloud metadata) or an admin page on the private
network and report back what they saw. The guard judges the address a check is
about to *connect to*, after DNS and before the socket opens, so a name that
resolves to a public address when the monitor is saved and to 10.0.0.5 at check
time (DNS rebinding) is still refused; and because every connection of a check,
including each redirect hop, goes through the same connector, a redirect to a
private address is refused too.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.helpers import is_ip_address

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Listed for the reader and for the tests; ``is_global`` below catches the rest of
# IANA's special-purpose registry (documentation, benchmarking, reserved ranges).
BLOCKED_NETWORKS: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(cidr)
    for cidr in (
        "0.0.0.0/8",  # "this network", incl. the unspecified address
        "10.0.0.0/8",  # RFC 1918
        "100.64.0.0/10",  # CGNAT (RFC 6598)
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local, incl. 169.254.169.254 (cloud metadata)
        "172.16.0.0/12",  # RFC 1918
        "192.0.0.0/24",  # IETF protocol assignments
        "192.168.0.0/16",  # RFC 1918
        "198.18.0.0/15",  # benchmarking
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, incl. broadcast
        "::/128",  # unspecified
        "::1/128",  # loopback
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # old site-local
        "ff00::/8",  # multicast
    )
)


# Set by a check around each request; each check runs in its own asyncio task, so
# this is per check. The connector notes what it learns about the connection here.
CONNECTION_NOTES: ContextVar[dict[str, Any] | None] = ContextVar("connection_notes", default=None)


class BlockedTarget(OSError):
    """The target resolves to an address the guard refuses.

    An ``OSError`` so that aiohttp passes it through its connector like any other
    resolution failure (wrapped in ``ClientConnectorDNSError``), before connecting.
    """


@dataclass(frozen=True)
class TargetPolicy:
    """Which addresses checks may connect to."""

    allow_private: bool = False
    allowed_networks: tuple[IPNetwork, ...] = field(default_factory=tuple)

    @classmethod
    def from_settings(cls) -> TargetPolicy:
        from django.conf import settings

        return cls(
            allow_private=settings.SENTINEL_ALLOW_PRIVATE_TARGETS,
            allowed_networks=parse_networks(settings.SENTINEL_ALLOWED_NETWORKS),
        )

    def refusal(self, address: str) -> str | None:
        """Why ``address`` may not be connected to, or None if it may."""
        if self.allow_private:
            return None
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        # ::ffff:10.0.0.5 and 64:ff9b::a00:5 reach the IPv4 address inside them.
        embedded = getattr(ip, "ipv4_mapped", None) or _nat64(ip)
        if embedded is not None:
            ip = embedded
        if any(ip in net for net in self.allowed_networks):
            return None
        if any(ip in net for net in BLOCKED_NETWORKS) or not ip.is_global or ip.is_multicast:
            return f"{ip} is a private or reserved address"
        return None

    def check(self, host: str, addresses: Iterable[str]) -> None:
        """Raise ``BlockedTarget`` unless every address of ``host`` is allowed.

        Every address, not just the first: the connector falls back to the next
        address when one fails, so an attacker could list a public address first.
        """
        for address in addresses:
            reason = self.refusal(address)
            if reason:
                raise BlockedTarget(f"refused {host}: {reason}")


def _nat64(ip: IPAddress) -> ipaddress.IPv4Address | None:
    if isinstance(ip, ipaddress.IPv6Address) and ip in ipaddress.ip_network("64:ff9b::/96"):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def parse_networks(entries: Sequence[str]) -> tuple[IPNetwork, ...]:
    # Malformed entries are reported by the sentinel.E002 system check.
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries)


class GuardedConnector(aiohttp.TCPConnector):
    """A connector that refuses private addresses between DNS and connect.

    ``_resolve_host`` is the one place every connection (first request, each
    redirect hop, IP literals included) gets its addresses from, so checking its
    answer is checking the address actually connected to. The DNS cache is off:
    a cached answer would hide a rebinding.

    It also times the DNS and connect phases into the check's ``CONNECTION_NOTES``:
    aiohttp's ``TraceConfig`` gives the same figures, but its signals cost about a
    tenth of a check's CPU.
    """

    def __init__(self, *, policy: TargetPolicy, **kwargs: Any) -> None:
        kwargs.setdefault("use_dns_cache", False)
        super().__init__(**kwargs)
        self._policy = policy

    async def _resolve_host(self, host: str, port: int, traces: Any = None) -> list[ResolveResult]:
        began = time.perf_counter()
        hosts = await super()._resolve_host(host, port, traces=traces)
        self._policy.check(host, (entry["host"] for entry in hosts))
        notes = CONNECTION_NOTES.get()
        if notes is not None and not is_ip_address(host):  # an IP literal has no lookup
            notes["dns"] = (time.perf_counter() - began) * 1000
        return hosts

    async def connect(self, req: Any, traces: Any, timeout: Any) -> aiohttp.connector.Connection:
        began = time.perf_counter()
        connection = await super().connect(req, traces, timeout)
        notes = CONNECTION_NOTES.get()
        if notes is not None:
            notes["connected_at"] = now = time.perf_counter()
            # TCP plus TLS: aiohttp does not report the two apart.
            notes["connect"] = max(0.0, (now - began) * 1000 - notes.get("dns", 0.0))
            # aiohttp releases a connection as soon as a short body is read, so the
            # peer certificate is taken here, while the TLS transport is certainly open.
            if connection.transport is not None:
                notes["ssl_object"] = connection.transport.get_extra_info("ssl_object")
        return connection


async def resolve_allowed(
    *, host: str, port: int, resolver: AbstractResolver, policy: TargetPolicy
) -> list[str]:
    """The addresses to connect to for the socket kinds (tcp, tls), guard applied."""
    try:
        ipaddress.ip_address(host)
        addresses = [host]
    except ValueError:
        answers = await resolver.resolve(host, port, family=socket.AF_UNSPEC)
        addresses = [entry["host"] for entry in answers]
    policy.check(host, addresses)
    return addresses
