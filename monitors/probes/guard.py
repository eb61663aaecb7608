"""The SSRF guard of the probe engine: ``core.netpolicy.TargetPolicy`` enforced in
the aiohttp connector.

The guard judges the address a check is about to *connect to*, after DNS and before
the socket opens, so a name that resolves to a public address when the monitor is
saved and to 10.0.0.5 at check time (DNS rebinding) is still refused; and because
every connection of a check, including each redirect hop, goes through the same
connector, a redirect to a private address is refused too.
"""

from __future__ import annotations

import socket
import time
from contextvars import ContextVar
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.helpers import is_ip_address

from core.netpolicy import TargetPolicy

# Set by a check around each request; each check runs in its own asyncio task, so
# this is per check. The connector notes what it learns about the connection here.
CONNECTION_NOTES: ContextVar[dict[str, Any] | None] = ContextVar("connection_notes", default=None)
# A monitor's "connect to" address, as (host name, IP address): connections to that
# host go to that address instead of its DNS answer (like ``curl --resolve``), while
# the HTTP Host header and the TLS server name stay the host's. Set per check.
CONNECT_TO: ContextVar[tuple[str, str] | None] = ContextVar("connect_to", default=None)


def connect_to_address(host: str) -> str | None:
    """The address this check connects to for ``host`` instead of resolving it, if any.
    Host names compare in their ASCII (IDNA) form, whichever form each side has."""
    override = CONNECT_TO.get()
    if override is not None and _ascii_host(override[0]) == _ascii_host(host):
        return override[1]
    return None


def _ascii_host(host: str) -> str:
    try:
        return host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return host.lower()


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
        address = connect_to_address(host)
        if address is not None:
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            hosts: list[ResolveResult] = [
                {
                    "hostname": host,
                    "host": address,
                    "port": port,
                    "family": family,
                    "proto": 0,
                    "flags": socket.AI_NUMERICHOST,
                }
            ]
        else:
            hosts = await super()._resolve_host(host, port, traces=traces)
        # The guard judges the address connected to, a "connect to" one included.
        self._policy.check(host, (entry["host"] for entry in hosts))
        notes = CONNECTION_NOTES.get()
        # An IP literal, or a "connect to" address, has no lookup.
        if notes is not None and address is None and not is_ip_address(host):
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
    """The addresses to connect to for the socket kinds (tcp, tls) and the lean HTTP path:
    the check's "connect to" address for ``host`` if it has one, else ``host`` itself
    when it is an IP literal, else its DNS answers; guard applied to each."""
    address = connect_to_address(host)
    if address is not None:
        addresses = [address]
    elif is_ip_address(host):
        addresses = [host]
    else:
        answers = await resolver.resolve(host, port, family=socket.AF_UNSPEC)
        addresses = [entry["host"] for entry in answers]
    policy.check(host, addresses)
    return addresses
