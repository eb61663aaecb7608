"""The SSRF guard for outgoing notifications (webhook, Slack, Apprise).

A notification URL is typed by a user, so a worker must never be talked into
POSTing to the metadata service or the database next door. The check has to hold
for the address actually connected to, not one looked up earlier (DNS rebinding
answers a public address to the check and a private one to the connect). So the
guard sits inside name resolution itself: ``install()`` wraps ``socket.getaddrinfo``
once per process, and inside ``guarded()`` every lookup made by this thread, by
``requests`` or by any Apprise plugin, is checked before its answer is returned;
the connection can only use addresses that passed. As a second line, inside
``guarded()`` every ``connect``/``sendto`` of a Python socket must name an allowed IP
address: a plugin that hands a host *name* to ``connect`` (resolved in C, past the
wrapper) is refused rather than trusted. Outside ``guarded()`` both wrappers are
pass-throughs.

Which addresses are allowed is not decided here: it is the probe engine's policy
(``core.netpolicy.TargetPolicy``, the same settings, the same blocked ranges,
IPv4-mapped and NAT64 addresses unwrapped), so checks and notifications can never
disagree about what a worker may reach. Only the enforcement point differs: the
probe engine checks in its aiohttp connector, notifications (sent with ``requests``
and by Apprise plugins) in name resolution and ``connect``.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from django.conf import settings

from core.netpolicy import TargetPolicy, parse_networks

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[..., list[Any]]

# The real resolver, captured before install() wraps it. Tests replace it to give
# fake DNS answers; nothing else should.
system_getaddrinfo: Resolver = socket.getaddrinfo

_local = threading.local()


class Blocked(socket.gaierror):
    """A notification target resolved to an address the guard refuses.

    A ``gaierror`` so that HTTP clients treat it as a failed lookup and give up on
    the connection; callers recognise it by ``blocked_reason()``.
    """


@lru_cache(maxsize=8)
def _policy(allow_private: bool, networks: tuple[str, ...]) -> TargetPolicy:
    return TargetPolicy(allow_private=allow_private, allowed_networks=parse_networks(networks))


def address_allowed(address: IPAddress) -> bool:
    """Public unicast addresses, plus whatever the operator opened in settings: the
    probe engine's ``TargetPolicy``, built from the same settings (cached per value,
    so that a settings override in a test takes effect)."""
    policy = _policy(
        settings.SENTINEL_ALLOW_PRIVATE_TARGETS, tuple(settings.SENTINEL_ALLOWED_NETWORKS)
    )
    return policy.refusal(str(address)) is None


def checked_getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
    """``getaddrinfo`` that refuses the whole answer if any address is not allowed."""
    answers = system_getaddrinfo(host, port, *args, **kwargs)
    for *_, sockaddr in answers:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if not address_allowed(address):
            reason = f"{host} resolves to {address}, which is not a public address"
            _local.blocked = reason
            raise Blocked(socket.EAI_FAIL, reason)
    return answers


def _getaddrinfo(*args: Any, **kwargs: Any) -> list[Any]:
    if getattr(_local, "active", False):
        return checked_getaddrinfo(*args, **kwargs)
    return system_getaddrinfo(*args, **kwargs)


def check_sockaddr(address: Any) -> None:
    """Inside ``guarded()``: refuse a socket address that is not an allowed IP."""
    if not getattr(_local, "active", False):
        return
    host = address[0] if isinstance(address, tuple) and address else address
    try:
        ip = ipaddress.ip_address(str(host).split("%", 1)[0])
    except ValueError:
        ip = None
    if ip is None or not address_allowed(ip):
        reason = (
            f"{host} is not a public address"
            if ip is not None
            else f"a connection to {host!r} without a checked lookup"
        )
        _local.blocked = reason
        raise Blocked(socket.EAI_FAIL, reason)


_socket_connect = socket.socket.connect
_socket_connect_ex = socket.socket.connect_ex
_socket_sendto = socket.socket.sendto


def _connect(self: socket.socket, address: Any) -> None:
    check_sockaddr(address)
    return _socket_connect(self, address)


def _connect_ex(self: socket.socket, address: Any) -> int:
    check_sockaddr(address)
    return _socket_connect_ex(self, address)


def _sendto(self: socket.socket, data: Any, *args: Any) -> int:
    check_sockaddr(args[-1])  # sendto(data, address) or sendto(data, flags, address)
    return _socket_sendto(self, data, *args)


def install() -> None:
    """Wrap ``socket.getaddrinfo`` and socket connects (idempotent)."""
    if socket.getaddrinfo is not _getaddrinfo:
        socket.getaddrinfo = _getaddrinfo
    if socket.socket.connect is _socket_connect:
        socket.socket.connect = _connect  # type: ignore[method-assign,assignment]
        socket.socket.connect_ex = _connect_ex  # type: ignore[method-assign,assignment]
        socket.socket.sendto = _sendto  # type: ignore[method-assign,assignment]


@contextmanager
def guarded() -> Iterator[None]:
    """Within this block, this thread connects only to addresses the guard allows."""
    install()
    _local.active, _local.blocked = True, None
    try:
        yield
    finally:
        _local.active = False


def blocked_reason() -> str | None:
    """Why the last ``guarded()`` block of this thread refused a lookup, if it did."""
    return getattr(_local, "blocked", None)
