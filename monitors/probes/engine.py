"""The probe engine: check a batch of targets concurrently, one result per check.

Pure asyncio + aiohttp, no Django ORM and no Celery: ``check_batch`` takes plain
``ProbeSpec`` records and returns ``CheckResult`` records. Every check runs under
its own deadline, so a hanging target costs its own timeout and nothing more; the
batch ends when its slowest check has succeeded, failed or timed out.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver
from aiohttp.helpers import is_ip_address
from aiohttp.resolver import ThreadedResolver
from yarl import URL

from core.netpolicy import BlockedTarget, TargetPolicy
from monitors.probes import http1
from monitors.probes.certs import (
    ChainExpiry,
    chain_expiry,
    default_ssl_context,
    monitor_ssl_context,
    unverified_ssl_context,
)
from monitors.probes.dns import check_dns
from monitors.probes.failures import UnexpectedResponse
from monitors.probes.guard import (
    CONNECT_TO,
    CONNECTION_NOTES,
    GuardedConnector,
    connect_to_address,
    resolve_allowed,
)
from monitors.probes.page import PageChecks, page_checks
from monitors.probes.ping import check_ping
from monitors.probes.redirects import resolve_location
from monitors.probes.spec import ProbeSpec
from telemetry.records import CheckResult, FailureKind

MAX_REDIRECTS = 5
# A check whose slot is more than this far ahead is started now rather than held.
MAX_SLOT_WAIT_SECONDS = 60.0
USER_AGENT = "UptimeSentinel/0.1 (uptime check)"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


class TooManyRedirects(Exception):
    pass


@dataclass(slots=True)
class Outcome:
    """What a check found, before it is stamped with its times."""

    ok: bool = True
    status_code: int | None = None
    failure: FailureKind | None = None
    error: str = ""
    phases: dict[str, float] = field(default_factory=dict)
    tls_expires_at: dt.datetime | None = None
    tls_subject: str = ""
    # What the check's duration is when it is not the time it took: a ping's mean
    # round trip (ms).
    duration_ms: float | None = None

    def note_chain(self, chain: ChainExpiry | None) -> None:
        """Record the chain's earliest expiry and who sets it."""
        if chain is not None:
            self.tls_expires_at, self.tls_subject = chain.expires_at, chain.subject


@dataclass(frozen=True)
class ProbeContext:
    """What every check of one batch shares: the guard, the resolver, TLS trust."""

    policy: TargetPolicy
    resolver: AbstractResolver
    ssl_context: ssl.SSLContext
    session: aiohttp.ClientSession
    # Plain GET/HEAD checks take the lean HTTP/1.1 path (http1.py); off in tests
    # that pin a behaviour to aiohttp's path.
    plain_http: bool = True


# --- batch ----------------------------------------------------------------------


async def check_batch(
    items: Sequence[tuple[ProbeSpec, dt.datetime]],
    *,
    policy: TargetPolicy,
    resolver: AbstractResolver | None = None,
    ssl_context: ssl.SSLContext | None = None,
    wait_for_slot: bool = True,
    plain_http: bool = True,
    on_result: Callable[[CheckResult], object] | None = None,
) -> list[CheckResult]:
    """Check every ``(spec, scheduled_at)`` concurrently, each starting at its slot.

    Results come back in the order of ``items``, and each is also handed to
    ``on_result`` as soon as its check ends (on the loop: it must not block). Never
    raises for a target's fault.
    """
    if not items:
        return []
    resolver = resolver or ThreadedResolver()
    ssl_context = ssl_context or default_ssl_context()
    connector = GuardedConnector(
        policy=policy,
        resolver=resolver,
        ssl=ssl_context,
        limit=0,
        force_close=True,
        # A region's own source address (IPv4: a region simulated on 127.0.0.x).
        local_addr=policy.local_addr(),
    )
    async with aiohttp.ClientSession(
        connector=connector,
        # Proxies from the environment would connect for us, past the guard.
        trust_env=False,
        auto_decompress=True,
        cookie_jar=aiohttp.DummyCookieJar(),
    ) as session:
        context = ProbeContext(policy, resolver, ssl_context, session, plain_http)

        async def check(spec: ProbeSpec, scheduled_at: dt.datetime) -> CheckResult:
            result = await check_one(
                spec, scheduled_at, context=context, wait_for_slot=wait_for_slot
            )
            if on_result is not None:
                on_result(result)
            return result

        return list(await asyncio.gather(*(check(spec, at) for spec, at in items)))


async def check_one(
    spec: ProbeSpec, scheduled_at: dt.datetime, *, context: ProbeContext, wait_for_slot: bool
) -> CheckResult:
    if wait_for_slot:
        delay = (scheduled_at - dt.datetime.now(dt.UTC)).total_seconds()
        if delay > 0:
            await asyncio.sleep(min(delay, MAX_SLOT_WAIT_SECONDS))
    started_at = dt.datetime.now(dt.UTC)
    began = time.perf_counter()
    if spec.connect_to:  # this task's own copy of the context: this check only
        CONNECT_TO.set((urlsplit(spec.url).hostname or "", spec.connect_to))
    try:
        async with asyncio.timeout(spec.timeout_seconds):
            outcome = await _check_kind(spec, context)
    except Exception as exc:  # each failure becomes a result, never a crashed batch
        kind, message = classify(exc, timeout=spec.timeout_seconds)
        outcome = Outcome(ok=False, failure=kind, error=message)
        if _certificate_refused(exc):
            await _record_refused_chain(outcome, exc, spec, context, began=began)
    took_ms = (time.perf_counter() - began) * 1000
    duration_ms = round(took_ms if outcome.duration_ms is None else outcome.duration_ms)
    phases = {name: round(value) for name, value in outcome.phases.items()}
    return CheckResult(
        monitor_id=spec.monitor_id,
        scheduled_at=scheduled_at,
        started_at=started_at,
        duration_ms=duration_ms,
        ok=outcome.ok,
        status_code=outcome.status_code,
        failure=outcome.failure,
        error=outcome.error,
        dns_ms=phases.get("dns"),
        connect_ms=phases.get("connect"),
        tls_ms=phases.get("tls"),
        ttfb_ms=phases.get("ttfb"),
        tls_expires_at=outcome.tls_expires_at,
        tls_expiring_subject=outcome.tls_subject,
    )


async def _check_kind(spec: ProbeSpec, context: ProbeContext) -> Outcome:
    if spec.kind == "http":
        if context.plain_http and plain_get(spec):
            return await check_http_plain(spec, context)
        return await check_http(spec, context)
    if spec.kind in ("tcp", "tls"):
        return await check_socket(spec, context)
    if spec.kind == "dns":
        return Outcome(phases={"dns": await check_dns(spec, policy=context.policy)})
    if spec.kind == "ping":
        verdict = await check_ping(spec, resolver=context.resolver, policy=context.policy)
        return Outcome(
            ok=verdict.ok,
            failure=verdict.failure,
            error=verdict.message,
            duration_ms=verdict.rtt_ms,
        )
    raise UnexpectedResponse(FailureKind.INVALID, f"{spec.kind} monitors are not supported")


def classify(exc: BaseException, *, timeout: float) -> tuple[FailureKind, str]:
    """The failure kind and a short message for an exception raised by a check."""
    if isinstance(exc, UnexpectedResponse):
        return exc.kind, str(exc)
    if isinstance(exc, TooManyRedirects):
        return FailureKind.TOO_MANY_REDIRECTS, str(exc)
    if isinstance(exc, TimeoutError):  # asyncio.timeout and aiohttp's own timeouts
        return FailureKind.TIMEOUT, f"no answer within {timeout:g} s"
    os_error = getattr(exc, "os_error", None)
    if isinstance(exc, BlockedTarget) or isinstance(os_error, BlockedTarget):
        return FailureKind.BLOCKED, str(exc if isinstance(exc, BlockedTarget) else os_error)
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return FailureKind.DNS, f"DNS lookup failed: {_first_line(os_error or exc)}"
    if isinstance(exc, aiohttp.ClientSSLError | ssl.SSLError | ssl.CertificateError):
        return FailureKind.TLS, f"TLS error: {_first_line(exc)}"
    if isinstance(exc, ConnectionRefusedError) or isinstance(os_error, ConnectionRefusedError):
        return FailureKind.REFUSED, "connection refused"
    if isinstance(exc, OSError) and exc.__class__.__name__ == "gaierror":
        return FailureKind.DNS, f"DNS lookup failed: {_first_line(exc)}"
    if isinstance(
        exc, aiohttp.ClientResponseError | aiohttp.ClientPayloadError | http1.InvalidResponse
    ):
        return FailureKind.INVALID, f"invalid response: {_first_line(exc)}"
    if isinstance(exc, aiohttp.InvalidURL):
        return FailureKind.INVALID, f"invalid URL: {_first_line(exc)}"
    if isinstance(exc, aiohttp.ClientError | OSError):
        return FailureKind.CONNECTION, f"connection failed: {_first_line(exc)}"
    return FailureKind.INTERNAL, f"checker error: {type(exc).__name__}: {_first_line(exc)}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:160]


# --- http -----------------------------------------------------------------------


async def check_http(spec: ProbeSpec, context: ProbeContext) -> Outcome:
    """One HTTP(S) check, following at most MAX_REDIRECTS redirects by hand.

    Redirects are followed here rather than by aiohttp so that each hop is counted,
    gets its own phase timings, and has its scheme checked (http and https only).
    """
    url = URL(spec.url)
    method = spec.method
    body: str | None = spec.body or None
    headers = {"User-Agent": USER_AGENT, **spec.headers}
    for _hop in range(MAX_REDIRECTS + 1):
        notes: dict[str, Any] = {}
        CONNECTION_NOTES.set(notes)
        sent_at = time.perf_counter()
        async with context.session.request(
            method,
            url,
            headers=headers,
            data=body,
            allow_redirects=False,
            ssl=_ssl_for(spec, context),
        ) as response:
            phases = _phases(notes, sent_at=sent_at, headers_at=time.perf_counter())
            location = response.headers.get("Location")
            if (
                response.status in REDIRECT_STATUSES
                and location
                and not spec.status_expected(response.status)
            ):
                url = _redirect_target(url, location)
                if response.status == 303 or (response.status in (301, 302) and method == "POST"):
                    method, body = "GET", None
                continue
            outcome = await _judge_response(spec, response, phases)
            outcome.note_chain(chain_expiry(notes.get("ssl_object")))
            return outcome
    raise TooManyRedirects(f"more than {MAX_REDIRECTS} redirects")


def _redirect_target(current: URL, location: str) -> URL:
    """Where a redirect goes (``resolve_location``, the same for both paths), if it is
    somewhere a check may go: http or https."""
    try:
        target = resolve_location(current, location)
    except ValueError as exc:  # yarl: a bad port, a malformed host
        raise UnexpectedResponse(FailureKind.INVALID, f"invalid redirect: {exc}") from None
    if target.scheme not in ("http", "https"):
        raise UnexpectedResponse(
            FailureKind.INVALID, f"redirect to a {target.scheme or 'relative'} URL"
        )
    return target


async def _judge_response(
    spec: ProbeSpec, response: aiohttp.ClientResponse, phases: dict[str, float]
) -> Outcome:
    outcome = Outcome(status_code=response.status, phases=phases)
    # Failures found in the response keep its status code and timings.
    if not spec.status_expected(response.status):
        _status_failure(outcome, response.status, response.reason)
    elif checks := page_checks(spec, response.status, response.headers):
        async for piece in response.content.iter_any():
            if checks.feed(piece):
                break
        checks.end()
        _page_verdict(checks, outcome)
    return outcome


def _page_verdict(checks: PageChecks, outcome: Outcome) -> None:
    """The page's keyword or JSON assertion failure, if any, on ``outcome``."""
    failure = checks.failure()
    if failure is not None:
        outcome.ok = False
        outcome.failure, outcome.error = failure


def _status_failure(outcome: Outcome, status: int, reason: str | None) -> None:
    outcome.ok, outcome.failure = False, FailureKind.STATUS
    outcome.error = f"unexpected status {status} {reason or ''}".strip()


def _ssl_for(spec: ProbeSpec, context: ProbeContext) -> ssl.SSLContext:
    """The batch's TLS trust, or the monitor's own (a CA bundle, or no verification)."""
    if spec.tls_verify and not spec.tls_ca_bundle:
        return context.ssl_context
    return monitor_ssl_context(verify=spec.tls_verify, ca_bundle=spec.tls_ca_bundle)


def _certificate_refused(exc: BaseException) -> bool:
    """Whether ``exc`` is a handshake that failed because the certificate did not verify."""
    return isinstance(exc, ssl.SSLCertVerificationError | aiohttp.ClientConnectorCertificateError)


async def _record_refused_chain(
    outcome: Outcome, exc: BaseException, spec: ProbeSpec, context: ProbeContext, *, began: float
) -> None:
    """A certificate that does not verify still has an expiry, and an expired one most
    of all: read the chain again without verifying it (one more handshake, to the same
    address, the guard applied) and record its earliest expiry; say "expired" when it
    is. Bounded by what is left of the check's timeout, at most 5 s."""
    # The hop whose handshake failed (after a redirect, not necessarily the URL's).
    host, port = getattr(exc, "host", None), getattr(exc, "port", None)
    if not host or not port:
        return
    left = min(5.0, spec.timeout_seconds - (time.perf_counter() - began))
    if left <= 0:
        return
    try:
        async with asyncio.timeout(left):
            addresses = await resolve_allowed(
                host=host, port=port, resolver=context.resolver, policy=context.policy
            )
            writer = await _open_first(addresses, port, context.policy)
            try:
                await writer.start_tls(unverified_ssl_context(), server_hostname=host)
                chain = chain_expiry(writer.get_extra_info("ssl_object"))
            finally:
                writer.close()
    except (OSError, TimeoutError, ssl.SSLError):
        return
    outcome.note_chain(chain)
    # "Expired" only when that is why it was refused: a chain the server sends may carry
    # a stale cross-signed certificate while the real reason is another.
    if chain is not None and _verify_code(exc) == X509_CERT_HAS_EXPIRED:
        outcome.error = (
            f"TLS certificate expired on {chain.expires_at:%Y-%m-%d %H:%M} UTC ({chain.subject})"
        )


# OpenSSL's X509_V_ERR_CERT_HAS_EXPIRED.
X509_CERT_HAS_EXPIRED = 10


def _verify_code(exc: BaseException) -> int | None:
    error = getattr(exc, "certificate_error", exc)  # aiohttp wraps the ssl error
    return getattr(error, "verify_code", None)


def _refused_at(exc: ssl.SSLCertVerificationError, host: str, port: int) -> None:
    """Note on a refused handshake which host and port it was, for
    ``_record_refused_chain`` (aiohttp's own error carries them already)."""
    exc.host, exc.port = host, port  # type: ignore[attr-defined]


def _phases(notes: dict[str, Any], *, sent_at: float, headers_at: float) -> dict[str, float]:
    """Phase timings (ms) of one hop: ``dns`` and ``connect`` as the connector noted
    them (absent for an IP literal, or a reused connection), ``ttfb`` from the
    connection being ready (or the request starting) to the response headers."""
    phases = {name: notes[name] for name in ("dns", "connect") if name in notes}
    phases["ttfb"] = (headers_at - notes.get("connected_at", sent_at)) * 1000
    return phases


# --- plain GET and HEAD (http1.py) ------------------------------------------------


def plain_get(spec: ProbeSpec) -> bool:
    """A check the lean path can do: a GET or HEAD with no body to send and headers that
    can be written as they are (a page with a keyword or JSON assertions is read there
    too)."""
    return (
        spec.method in ("GET", "HEAD")
        and not spec.body
        and all(http1.header_safe(name, value) for name, value in spec.headers.items())
    )


async def check_http_plain(spec: ProbeSpec, context: ProbeContext) -> Outcome:
    """``check_http`` for ``plain_get`` specs, on the lean HTTP/1.1 path.

    Same rules: at most MAX_REDIRECTS redirects followed by hand, each hop's scheme
    checked, and each hop's addresses resolved again and judged by the guard
    (``resolve_allowed``) before anything connects to them; the keyword and JSON
    assertions judged on the final page by the same ``PageChecks``, fed as the content
    arrives.
    """
    url = URL(spec.url)
    method = spec.method
    headers = _plain_headers(spec)
    for _hop in range(MAX_REDIRECTS + 1):
        page = _PlainPage(spec)
        head, dns_ms = await _plain_hop(
            url, method, headers, context, _ssl_for(spec, context), page
        )
        redirect = head.status in REDIRECT_STATUSES and not spec.status_expected(head.status)
        if redirect and head.location:
            url = _redirect_target(url, head.location)
            method = "GET" if head.status == 303 else method
            continue
        ttfb_ms = (head.answered_at - head.connected_at) * 1000
        phases = {"connect": head.connect_ms, "ttfb": ttfb_ms}
        if dns_ms is not None:
            phases["dns"] = dns_ms
        outcome = Outcome(status_code=head.status, phases=phases)
        if not spec.status_expected(head.status):
            _status_failure(outcome, head.status, head.reason)
        elif page.checks is not None:
            _page_verdict(page.checks, outcome)
        outcome.note_chain(chain_expiry(head.ssl_object))
        return outcome
    raise TooManyRedirects(f"more than {MAX_REDIRECTS} redirects")


class _PlainPage:
    """Asked by the lean path once a hop's head is in: the page is read only for a
    keyword or JSON assertions in a final answer (``page_checks``); keeps the checks
    for the verdict."""

    __slots__ = ("checks", "spec")

    def __init__(self, spec: ProbeSpec) -> None:
        self.spec = spec
        self.checks: PageChecks | None = None

    def __call__(self, status: int, headers: Mapping[str, str]) -> PageChecks | None:
        self.checks = page_checks(self.spec, status, headers)
        return self.checks


def _plain_headers(spec: ProbeSpec) -> list[tuple[str, str]]:
    # The monitor's own headers win over ours, whatever their case.
    ours = {"user-agent": ("User-Agent", USER_AGENT), "accept": ("Accept", "*/*")}
    theirs = {name.lower(): (name, value) for name, value in spec.headers.items()}
    return list({**ours, **theirs}.values())


async def _plain_hop(
    url: URL,
    method: str,
    headers: list[tuple[str, str]],
    context: ProbeContext,
    ssl_context: ssl.SSLContext,
    page_for: http1.PageFor,
) -> tuple[http1.Head, float | None]:
    host = url.raw_host
    if url.scheme not in ("http", "https") or not host:
        raise UnexpectedResponse(FailureKind.INVALID, f"invalid URL: {url}")
    tls = url.scheme == "https"
    port = url.port or (443 if tls else 80)
    began = time.perf_counter()
    addresses = await resolve_allowed(
        host=host, port=port, resolver=context.resolver, policy=context.policy
    )
    dns_ms = (
        None
        if is_ip_address(host) or connect_to_address(host)
        else (time.perf_counter() - began) * 1000
    )
    try:
        head = await http1.fetch(
            addresses=addresses,
            port=port,
            request=http1.request_bytes(
                method, url.raw_path_qs or "/", url.host_port_subcomponent or host, headers
            ),
            ssl_context=ssl_context if tls else None,
            server_hostname=host if tls else None,
            page_for=page_for,
            policy=context.policy,
        )
    except ssl.SSLCertVerificationError as exc:
        _refused_at(exc, host, port)
        raise
    return head, dns_ms


# --- tcp and tls ----------------------------------------------------------------


async def check_socket(spec: ProbeSpec, context: ProbeContext) -> Outcome:
    """``tcp://host:port``: the port accepts; ``tls://host:port``: and its cert verifies."""
    parts = urlsplit(spec.url)
    host, port = parts.hostname or "", parts.port or 0
    addresses = await resolve_allowed(
        host=host, port=port, resolver=context.resolver, policy=context.policy
    )
    outcome = Outcome()
    began = time.perf_counter()
    writer = await _open_first(addresses, port, context.policy)
    outcome.phases["connect"] = (time.perf_counter() - began) * 1000
    try:
        if spec.kind == "tls":
            began = time.perf_counter()
            try:
                await writer.start_tls(_ssl_for(spec, context), server_hostname=host)
            except ssl.SSLCertVerificationError as exc:
                _refused_at(exc, host, port)
                raise
            outcome.phases["tls"] = (time.perf_counter() - began) * 1000
            outcome.note_chain(chain_expiry(writer.get_extra_info("ssl_object")))
    finally:
        writer.close()
    return outcome


async def _open_first(
    addresses: Sequence[str], port: int, policy: TargetPolicy
) -> asyncio.StreamWriter:
    last: OSError | None = None
    for address in addresses:
        try:
            _reader, writer = await asyncio.open_connection(
                address, port, local_addr=policy.local_addr(address)
            )
            return writer
        except OSError as exc:
            last = exc
    raise last or OSError("no address to connect to")
