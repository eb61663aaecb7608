"""What one check needs to know about its monitor, detached from the ORM.

The probe engine works on these plain records so that it can be tested, and run
from a management command, without Celery and without the database. A probe worker
builds them from the specs its messages carry (``monitors.slots``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from monitors.models import Monitor
from monitors.slots import PROBE_COLUMNS
from monitors.validators import (
    DEFAULT_PAGE_KIB,
    DEFAULT_PING_COUNT,
    DEFAULT_PING_MAX_LOSS_PERCENT,
    parse_status_codes,
)


class JsonAssertion(NamedTuple):
    """One condition on an HTTP check's JSON body (``jsonbody``): a JMESPath expression,
    an operator (``validators.JSON_ASSERTION_OPS``) and the value to compare with (None
    for ``exists``)."""

    path: str
    op: str
    value: Any = None


@dataclass(frozen=True, slots=True)
class ProbeSpec:
    monitor_id: int
    kind: str  # "http", "tcp", "tls", "dns" or "ping" (Monitor.Kind values)
    url: str
    timeout_seconds: float = 10.0
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    expected_status: tuple[tuple[int, int], ...] = ((200, 299),)
    keyword: str = ""
    keyword_must_appear: bool = True
    # How much of a page a keyword check or JSON assertions read (KiB, after gzip is
    # undone).
    max_body_kib: int = DEFAULT_PAGE_KIB
    json_assertions: tuple[JsonAssertion, ...] = ()
    connect_to: str = ""  # an IP address to connect to instead of the URL host's DNS answer
    tls_verify: bool = True
    tls_ca_bundle: str = ""  # PEM CA certificates trusted besides the system's
    # DNS monitors: the record of the url's name to look up, the resolver ("ip[:port]";
    # empty: the system's), the values as typed and how the answer must match them
    # ("resolves", "any", "all", "exact": Monitor.DnsMatch).
    dns_record_type: str = "A"
    dns_resolver: str = ""
    dns_expected: tuple[str, ...] = ()
    dns_match: str = "resolves"
    # Ping monitors: echo requests per check; the check fails when more than
    # ping_max_loss_percent of them are lost, or their mean round trip is over
    # ping_max_rtt_ms (None: no limit).
    ping_count: int = DEFAULT_PING_COUNT
    ping_max_loss_percent: int = DEFAULT_PING_MAX_LOSS_PERCENT
    ping_max_rtt_ms: int | None = None

    def status_expected(self, code: int) -> bool:
        return any(low <= code <= high for low, high in self.expected_status)


def spec_from_row(row: Sequence[Any]) -> ProbeSpec:
    """A spec from the values of ``PROBE_COLUMNS``, in that order: a row of the monitor
    table, or a slot's spec as it travels (``monitors.slots.spec_row``)."""
    v = dict(zip(PROBE_COLUMNS, row, strict=True))
    return ProbeSpec(
        monitor_id=v["id"],
        kind=v["kind"],
        url=v["url"],
        timeout_seconds=float(v["timeout_seconds"]),
        method=v["method"],
        headers=dict(v["headers"] or {}),
        body=v["body"],
        expected_status=status_ranges(v["expected_status_codes"]),
        keyword=v["keyword"],
        keyword_must_appear=v["keyword_mode"] == "present",
        max_body_kib=v["max_body_kib"],
        json_assertions=json_assertions(v["json_assertions"]),
        connect_to=v["connect_to"],
        tls_verify=v["tls_verify"],
        tls_ca_bundle=v["tls_ca_bundle"],
        dns_record_type=v["dns_record_type"],
        dns_resolver=v["dns_resolver"],
        dns_expected=tuple(v["dns_expected"] or ()),
        dns_match=v["dns_match"],
        ping_count=v["ping_count"],
        ping_max_loss_percent=v["ping_max_loss_percent"],
        ping_max_rtt_ms=v["ping_max_rtt_ms"],
    )


def spec_from_monitor(monitor: Monitor) -> ProbeSpec:
    return spec_from_row([monitor.pk, *(getattr(monitor, name) for name in PROBE_COLUMNS[1:])])


def json_assertions(stored: Any) -> tuple[JsonAssertion, ...]:
    """The assertions of ``Monitor.json_assertions`` (validated when saved). An item
    that is not an object becomes an assertion with no path, which fails the check as
    invalid rather than the batch."""
    return tuple(
        JsonAssertion(str(item.get("path", "")), str(item.get("op", "")), item.get("value"))
        if isinstance(item, dict)
        else JsonAssertion("", "")
        for item in stored or ()
    )


@functools.lru_cache(maxsize=1024)
def status_ranges(codes: str) -> tuple[tuple[int, int], ...]:
    """``parse_status_codes``, once per distinct text: most monitors share a few."""
    return tuple(parse_status_codes(codes))
