"""Ping checks: a few ICMP echo requests to a host, judged on loss and round-trip time.

A ping monitor's target is ``ping://host`` (a name, an IPv4 address or an IPv6 address
in brackets). The host is resolved with the engine's resolver and every address judged
by the SSRF guard (``guard.resolve_allowed``) before anything is sent; the echo
requests go to the first address. They are icmplib's ``async_ping`` on the probe loop,
``ping_count`` of them PING_INTERVAL_SECONDS apart, each waited for its share of the
monitor's timeout.

The socket: a raw ICMP socket when the process may open one (root, or CAP_NET_RAW),
else the kernel's unprivileged ICMP datagram socket when ``net.ipv4.ping_group_range``
holds the process's group. When neither can be opened, ``icmp_unavailable`` says why
(the ``sentinel.W001`` system check at start-up) and each ping check fails with that
sentence, as ``internal``: the probe worker's fault, never the target's.

The verdict (``judge``): every echo request lost is a ``timeout``; more than
``ping_max_loss_percent`` lost is ``loss``; a mean round trip over ``ping_max_rtt_ms``
is ``slow``. The result's duration is the mean round trip, and its message, on success
too, holds the figures (``summary``) that the monitor page reads back (``parse``).
"""

from __future__ import annotations

import functools
import os
import re
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import icmplib
from aiohttp.abc import AbstractResolver

from core.netpolicy import TargetPolicy
from monitors.probes.failures import UnexpectedResponse
from monitors.probes.guard import resolve_allowed
from monitors.probes.spec import ProbeSpec
from monitors.validators import PING_INTERVAL_SECONDS, ping_host
from telemetry.records import FailureKind

# Kept from the monitor's timeout after the name lookup, so that the last echo request's
# wait ends before the engine's deadline: a lost echo is reported as lost, not cut short.
MARGIN_SECONDS = 0.05
# A check's figures in its message, e.g. "1 of 3 echo requests lost (33 %), round trip
# min/avg/max 0.04/0.05/0.07 ms" (written by ``summary``, read by ``parse``).
FIGURES_RE = re.compile(
    r"(?P<lost>\d+) of (?P<sent>\d+) echo requests lost \(\d+ %[^)]*\)"
    r"(?:, round trip min/avg/max (?P<min>[\d.]+)/(?P<avg>[\d.]+)/(?P<max>[\d.]+) ms)?"
)


@dataclass(frozen=True, slots=True)
class PingVerdict:
    """What a ping check found: up or the failure, the message (figures included) and
    the mean round trip in ms (None when no echo was answered)."""

    ok: bool
    failure: FailureKind | None
    message: str
    rtt_ms: float | None


@dataclass(frozen=True, slots=True)
class PingFigures:
    """The figures of one check, as its message holds them (``parse``)."""

    sent: int
    received: int
    min_ms: float | None
    avg_ms: float | None
    max_ms: float | None

    @property
    def lost(self) -> int:
        return self.sent - self.received

    @property
    def lost_percent(self) -> float:
        return 100 * self.lost / self.sent if self.sent else 0.0

    @property
    def round_trip(self) -> str:
        """min/avg/max as messages write them, e.g. "0.041/0.052/0.067 ms"; "" when no
        echo request was answered."""
        if self.min_ms is None or self.avg_ms is None or self.max_ms is None:
            return ""
        return f"{_ms(self.min_ms)}/{_ms(self.avg_ms)}/{_ms(self.max_ms)} ms"


async def check_ping(
    spec: ProbeSpec, *, resolver: AbstractResolver, policy: TargetPolicy
) -> PingVerdict:
    """Send ``spec.ping_count`` echo requests to the target's host and judge them.

    Raises ``BlockedTarget`` for an address the guard refuses (nothing sent),
    ``UnexpectedResponse`` for a target that is not ``ping://host`` (``invalid``) or a
    probe worker that cannot open an ICMP socket (``internal``), and the resolver's
    errors for a name that does not resolve (classified ``dns`` by the engine).
    """
    try:
        host = ping_host(spec.url)
    except ValueError as exc:
        raise UnexpectedResponse(FailureKind.INVALID, str(exc)) from None
    began = time.perf_counter()
    addresses = await resolve_allowed(host=host, port=0, resolver=resolver, policy=policy)
    spent = time.perf_counter() - began
    address = addresses[0]
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    problem = icmp_unavailable(family)
    if problem:
        raise UnexpectedResponse(FailureKind.INTERNAL, problem)
    answered = await icmplib.async_ping(
        address,
        count=spec.ping_count,
        interval=PING_INTERVAL_SECONDS,
        timeout=echo_wait(spec, spent=spent),
        privileged=icmp_privileged(family),
    )
    return judge(spec, answered)


def echo_wait(spec: ProbeSpec, *, spent: float = 0.0) -> float:
    """How long each echo request is waited for: its share of what is left of the
    monitor's timeout after the name lookup (``spent`` seconds) and the intervals
    between the requests (validation keeps it near 0.5 s or more for a quick lookup)."""
    left = spec.timeout_seconds - spent - MARGIN_SECONDS
    spread = PING_INTERVAL_SECONDS * (spec.ping_count - 1)
    return max(0.1, (left - spread) / spec.ping_count)


def judge(spec: ProbeSpec, answered: icmplib.Host) -> PingVerdict:
    """The verdict on ``answered`` (icmplib's figures for the echo requests sent):
    ``timeout`` when none came back, ``loss`` when more than the monitor's share was
    lost, ``slow`` when the mean round trip is over its limit, else up."""
    sent, received, rtts = answered.packets_sent, answered.packets_received, answered.rtts
    if received == 0:
        message = (
            f"{summary(sent, received, rtts)}: no echo reply within {spec.timeout_seconds:g} s"
        )
        return PingVerdict(False, FailureKind.TIMEOUT, message, None)
    rtt = sum(rtts) / len(rtts)
    if 100 * (sent - received) > spec.ping_max_loss_percent * sent:
        over = f"over the {spec.ping_max_loss_percent} % allowed"
        return PingVerdict(False, FailureKind.LOSS, summary(sent, received, rtts, over), rtt)
    if spec.ping_max_rtt_ms is not None and rtt > spec.ping_max_rtt_ms:
        message = f"{summary(sent, received, rtts)}; the mean is over {spec.ping_max_rtt_ms} ms"
        return PingVerdict(False, FailureKind.SLOW, message, rtt)
    return PingVerdict(True, None, summary(sent, received, rtts), rtt)


def summary(sent: int, received: int, rtts: list[float], note: str = "") -> str:
    """The figures as a message holds them, e.g. "1 of 3 echo requests lost (33 %),
    round trip min/avg/max 0.041/0.052/0.067 ms": the loss (with ``note`` beside its
    share) and, when any reply came back, the round trip (ms, 3 significant digits)."""
    lost = sent - received
    share = f"{100 * lost / sent:.0f} %" if sent else "100 %"
    text = f"{lost} of {sent} echo requests lost ({share}{', ' + note if note else ''})"
    if rtts:
        low, mean, high = min(rtts), sum(rtts) / len(rtts), max(rtts)
        text += f", round trip min/avg/max {_ms(low)}/{_ms(mean)}/{_ms(high)} ms"
    return text


def _ms(value: float) -> str:
    return f"{value:.3g}" if value < 100 else f"{value:.0f}"


def parse(message: str) -> PingFigures | None:
    """The figures in a ping check's message (``summary``'s words), or None when it
    holds none (a blocked target, a name that does not resolve)."""
    found = FIGURES_RE.search(message)
    if found is None:
        return None
    low, mean, high = (found[name] for name in ("min", "avg", "max"))
    sent = int(found["sent"])
    return PingFigures(
        sent=sent,
        received=sent - int(found["lost"]),
        min_ms=None if low is None else float(low),
        avg_ms=None if mean is None else float(mean),
        max_ms=None if high is None else float(high),
    )


def figures_together(messages: Iterable[str]) -> PingFigures | None:
    """The figures of several checks as one (the monitor page's recent checks): echo
    requests sent and answered added up, the lowest and highest round trip, and the
    mean of every answered one; None when no message holds figures."""
    read = [figures for figures in map(parse, messages) if figures is not None]
    if not read:
        return None
    answered = [(f.received, f.min_ms, f.avg_ms, f.max_ms) for f in read if f.avg_ms is not None]
    received = sum(count for count, *_ in answered)
    return PingFigures(
        sent=sum(f.sent for f in read),
        received=sum(f.received for f in read),
        min_ms=min((low for _, low, _, _ in answered if low is not None), default=None),
        avg_ms=sum(count * (mean or 0.0) for count, _, mean, _ in answered) / received
        if received
        else None,
        max_ms=max((high for *_, high in answered if high is not None), default=None),
    )


@functools.cache
def icmp_privileged(family: int) -> bool:
    """Whether echo requests of ``family`` go out over a raw socket (True: this process
    is root or has CAP_NET_RAW) or the kernel's ICMP datagram socket (False). Call
    ``icmp_unavailable`` first: with neither, this says False."""
    return _can_open(family, socket.SOCK_RAW)


@functools.cache
def icmp_unavailable(family: int = socket.AF_INET) -> str:
    """Why this process cannot send echo requests of ``family``, or "" when it can:
    a raw socket (root) or a datagram one (``ping_group_range``) opens. Asked once per
    process: a changed sysctl takes a worker restart."""
    if icmp_privileged(family) or _can_open(family, socket.SOCK_DGRAM):
        return ""
    if family == socket.AF_INET6 and not socket.has_ipv6:
        return "this probe worker cannot send ICMPv6 echo requests: no IPv6 support"
    groups = _ping_group_range()
    return (
        "this probe worker cannot send echo requests: it is not root (no CAP_NET_RAW) "
        f"and net.ipv4.ping_group_range ({groups}) leaves out its group {os.getegid()}"
    )


def _can_open(family: int, kind: int) -> bool:
    proto = socket.IPPROTO_ICMPV6 if family == socket.AF_INET6 else socket.IPPROTO_ICMP
    try:
        socket.socket(family, kind, proto).close()
    except OSError:
        return False
    return True


def _ping_group_range() -> str:
    try:
        return " ".join(Path("/proc/sys/net/ipv4/ping_group_range").read_text().split())
    except OSError:
        return "not readable"
