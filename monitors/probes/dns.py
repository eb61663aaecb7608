"""DNS checks: look up one record of a name and judge the answer.

A DNS monitor's target is ``dns://name``; its fields say which record type to ask for,
which resolver to ask (its own ``ip[:port]``, or the system's from /etc/resolv.conf)
and what answer counts as up (``dns_match`` against ``dns_expected``). The lookup is
dnspython's asyncio stub resolver, so DNS checks share the probe loop with the HTTP
checks and run under the same per-check deadline.

The SSRF guard judges a monitor's own resolver as it judges any target: a resolver at
a private address is refused (``BlockedTarget``) before a packet is sent, unless the
``TargetPolicy`` allows it. The system's resolver is the operator's, the one every
HTTP check's name lookup already uses, and is not judged.

Answers and expected values are compared in one canonical text form
(``validators.dns_value_canonical``): names without case or the final dot, addresses
in their short form, TXT strings joined without quotes, MX as ``"preference host"``.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence

import dns.asyncresolver
import dns.exception
import dns.name
import dns.nameserver
import dns.rcode
import dns.resolver

from core.netpolicy import TargetPolicy
from monitors.probes.failures import UnexpectedResponse
from monitors.probes.spec import ProbeSpec
from monitors.validators import (
    dns_name,
    dns_rdata_canonical,
    dns_value_canonical,
    parse_dns_resolver,
)
from telemetry.records import FailureKind

# How the answer's values must match the expected ones (Monitor.DnsMatch).
MATCH_WORDS = {"any": "any of", "all": "all of", "exact": "exactly"}
# Values listed in a mismatch message, each cut to this many characters: the message
# is kept to records.MAX_ERROR_LENGTH (200) characters.
SHOWN_VALUES = 4
SHOWN_VALUE_CHARS = 60


async def check_dns(spec: ProbeSpec, *, policy: TargetPolicy) -> float:
    """Look up ``spec``'s record and judge the answer; returns the lookup's time (ms).

    Raises ``BlockedTarget`` for a resolver the guard refuses (nothing sent),
    ``UnexpectedResponse`` for an answer that is not up (``nxdomain``, ``no_answer``,
    ``servfail``, ``refused``, ``mismatch``; ``invalid`` for a target or expected value
    that is not DNS), ``TimeoutError`` when the resolver does not answer in time (the
    engine's deadline usually ends the lookup first), and ``OSError`` for a network
    fault.
    """
    try:
        name = dns_name(spec.url)
    except ValueError as exc:
        raise UnexpectedResponse(FailureKind.INVALID, str(exc)) from None
    resolver = _resolver(spec.dns_resolver, policy)
    began = time.perf_counter()
    answer = await _lookup(resolver, name, spec)
    elapsed_ms = (time.perf_counter() - began) * 1000
    shown = name.to_unicode(omit_final_dot=True)
    got = sorted({dns_rdata_canonical(rdata) for rdata in answer.rrset or ()})
    if not got:
        raise UnexpectedResponse(
            FailureKind.NO_ANSWER,
            f"no {spec.dns_record_type} record for {shown} (NOERROR, empty answer)",
        )
    _judge(spec, got)
    return elapsed_ms


def _resolver(address: str, policy: TargetPolicy) -> dns.asyncresolver.Resolver:
    """The monitor's own resolver once the guard allows its address, or the system's."""
    if not address:
        return _system_resolver()
    try:
        ip, port = parse_dns_resolver(address)
    except ValueError:
        raise UnexpectedResponse(
            FailureKind.INVALID, f"invalid resolver address {address!r}"
        ) from None
    policy.check(f"resolver {ip}", [ip])
    return _resolver_at(ip, port)


@functools.lru_cache(maxsize=1)
def _system_resolver() -> dns.asyncresolver.Resolver:
    """The resolvers of /etc/resolv.conf, read once per process (like a C library's
    resolver). No cache: every check asks again."""
    try:
        return dns.asyncresolver.Resolver()
    except dns.resolver.NoResolverConfiguration:
        raise UnexpectedResponse(
            FailureKind.DNS,
            "no system resolver (/etc/resolv.conf names none); give the monitor a resolver",
        ) from None


@functools.lru_cache(maxsize=256)
def _resolver_at(ip: str, port: int) -> dns.asyncresolver.Resolver:
    """A resolver that asks ``ip:port`` only (over UDP, TCP for a truncated answer);
    shared by the monitors that name it, as it keeps no state between lookups."""
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = [dns.nameserver.Do53Nameserver(ip, port)]
    return resolver


async def _lookup(
    resolver: dns.asyncresolver.Resolver, name: dns.name.Name, spec: ProbeSpec
) -> dns.resolver.Answer:
    """The answer for ``name``'s ``spec.dns_record_type`` records (possibly empty), or
    the failure that explains why there is none."""
    try:
        return await resolver.resolve(
            name,
            spec.dns_record_type,
            raise_on_no_answer=False,
            search=False,
            # The engine's deadline (spec.timeout_seconds) ends a silent lookup; this
            # only keeps dnspython from giving up before it.
            lifetime=spec.timeout_seconds + 1,
        )
    except dns.resolver.NXDOMAIN:
        raise UnexpectedResponse(
            FailureKind.NXDOMAIN,
            f"{name.to_unicode(omit_final_dot=True)} does not exist (NXDOMAIN)",
        ) from None
    except dns.resolver.NoNameservers as exc:
        raise _resolver_failure(exc, spec) from None
    except dns.resolver.YXDOMAIN:
        raise UnexpectedResponse(
            FailureKind.SERVFAIL, f"{_who(spec)} answered YXDOMAIN (the name is too long)"
        ) from None
    except dns.exception.Timeout:
        raise TimeoutError from None


def _resolver_failure(exc: dns.resolver.NoNameservers, spec: ProbeSpec) -> UnexpectedResponse:
    """The failure of a lookup no resolver answered usefully, from the last error:
    an error code (REFUSED, SERVFAIL, ...), a refused or failed connection, or an
    answer that is not DNS."""
    errors = exc.kwargs.get("errors") or []
    problem = errors[-1][3] if errors else None
    response = errors[-1][4] if errors else None
    who = _who(spec)
    if response is not None:
        rcode = response.rcode()
        text = dns.rcode.to_text(rcode)
        if rcode == dns.rcode.REFUSED:
            return UnexpectedResponse(FailureKind.REFUSED, f"{who} refused the query (REFUSED)")
        if isinstance(problem, Exception):  # an answer that dnspython could not use
            return UnexpectedResponse(FailureKind.INVALID, f"invalid answer from {who}: {problem}")
        return UnexpectedResponse(FailureKind.SERVFAIL, f"{who} answered {text}")
    if isinstance(problem, ConnectionRefusedError):
        return UnexpectedResponse(FailureKind.REFUSED, f"{who} refused the connection")
    if isinstance(problem, OSError):
        return UnexpectedResponse(FailureKind.CONNECTION, f"{who} unreachable: {problem}")
    return UnexpectedResponse(FailureKind.INVALID, f"invalid answer from {who}: {problem}")


def _who(spec: ProbeSpec) -> str:
    return f"resolver {spec.dns_resolver}" if spec.dns_resolver else "the system resolver"


def _judge(spec: ProbeSpec, got: Sequence[str]) -> None:
    """Raise ``mismatch`` unless the answer's values ``got`` (canonical) match the
    expected ones as ``spec.dns_match`` says: any of them among the answer, all of them
    (the answer may hold more), or exactly them."""
    if spec.dns_match not in MATCH_WORDS:  # "resolves": any answer will do
        return
    expected = _expected(spec.dns_record_type, spec.dns_expected)
    record_type = spec.dns_record_type
    found = [value for value in expected if any(_matches(record_type, value, a) for a in got)]
    ok = {
        "any": bool(found),
        "all": len(found) == len(expected),
        "exact": len(found) == len(expected)
        and all(any(_matches(record_type, value, a) for value in expected) for a in got),
    }[spec.dns_match]
    if not ok:
        raise UnexpectedResponse(
            FailureKind.MISMATCH,
            f"got {record_type} {_shown(record_type, got)}; expected "
            f"{MATCH_WORDS[spec.dns_match]} {_shown(record_type, expected)}",
        )


@functools.lru_cache(maxsize=1024)
def _expected(record_type: str, values: tuple[str, ...]) -> tuple[str, ...]:
    """The expected values in canonical form, once per distinct list (validated when
    saved; a stored value that is not of the type fails the check as ``invalid``)."""
    try:
        return tuple(dns_value_canonical(record_type, value) for value in values)
    except ValueError as exc:
        raise UnexpectedResponse(FailureKind.INVALID, f"expected value: {exc}") from None


def _matches(record_type: str, expected: str, answer: str) -> bool:
    """Whether one answer value is the expected one. An SOA value given by its first
    fields (the servers, not the serial that changes) matches answers that start so."""
    if record_type == "SOA":
        return answer == expected or answer.startswith(expected + " ")
    return answer == expected


def _shown(record_type: str, values: Sequence[str]) -> str:
    """Values for a message: TXT quoted (its text may hold commas and spaces), each cut
    to SHOWN_VALUE_CHARS, at most SHOWN_VALUES of them."""

    def one(value: str) -> str:
        if len(value) > SHOWN_VALUE_CHARS:
            value = value[:SHOWN_VALUE_CHARS] + "…"
        return f'"{value}"' if record_type == "TXT" else value

    listed = ", ".join(one(value) for value in values[:SHOWN_VALUES])
    more = len(values) - SHOWN_VALUES
    return listed + (f" and {more} more" if more > 0 else "")
