"""The check result: one small record per check, from probe worker to MySQL.

A plain dataclass, not a Django model: millions of them pass through the Redis
buffer an hour. A buffer entry carries a probe batch's results as one JSON array of
"wire rows": lists in check_result's column order, times as integer epoch
milliseconds. Ingest checks each row strictly (``wire_rows_check``) so that a
malformed one becomes a dead letter instead of garbage in MySQL, and stores the rows
without building a ``CheckResult`` for each.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any

import orjson

from core.time import from_epoch_ms, to_epoch_ms

MAX_ERROR_LENGTH = 200


class FailureKind(StrEnum):
    """Why a check failed, in the product's words; stored in ``check_result.failure``
    (VARCHAR(16)) and ``Incident.first_failure_kind`` (16 characters)."""

    TIMEOUT = "timeout"
    DNS = "dns"
    REFUSED = "refused"
    CONNECTION = "connection"  # reset, unreachable, closed early
    TLS = "tls"
    STATUS = "status"  # unexpected HTTP status code
    KEYWORD = "keyword"  # keyword missing (or present when it must not be)
    BLOCKED = "blocked"  # refused by the SSRF guard
    TOO_MANY_REDIRECTS = "redirects"
    INVALID = "invalid"  # the response could not be parsed
    # DNS monitors. Values are short: check_result.failure is VARCHAR(16).
    NXDOMAIN = "nxdomain"  # the name does not exist
    NO_ANSWER = "no_answer"  # the name exists, without records of the type (NOERROR, empty)
    SERVFAIL = "servfail"  # the resolver answered with an error (SERVFAIL, FORMERR, ...)
    MISMATCH = "mismatch"  # records came back, not the expected ones
    # HTTP checks with JSON assertions: one did not hold, or the body is not JSON.
    ASSERTION = "assertion"
    # Ping monitors: too many echo requests lost (all of them lost is a timeout), or the
    # mean round trip over the monitor's limit.
    LOSS = "loss"
    SLOW = "slow"
    INTERNAL = "internal"  # a bug in the checker, never the target's fault


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of one check of one monitor for one scheduled slot.

    ``(monitor_id, scheduled_at)`` identifies the check: the dispatcher hands out
    each slot once, so storing it twice is a replay and must be a no-op.
    """

    monitor_id: int
    scheduled_at: dt.datetime
    started_at: dt.datetime
    duration_ms: int
    ok: bool
    status_code: int | None = None
    failure: FailureKind | None = None
    error: str = ""
    dns_ms: int | None = None
    connect_ms: int | None = None
    tls_ms: int | None = None
    ttfb_ms: int | None = None
    tls_expires_at: dt.datetime | None = None
    # Who sets ``tls_expires_at`` when it is not the server's own certificate (an
    # intermediate that expires first): for the alert, not stored (not a column).
    tls_expiring_subject: str = field(default="", compare=False, metadata={"stored": False})

    def to_wire(self) -> WireRow:
        """The result as the buffer carries it: a list in ``WIRE_FIELDS`` order, times
        as integer epoch milliseconds. Not ``dataclasses.astuple``, which deep-copies
        every value, and this runs for every check a probe worker makes."""
        return [
            self.monitor_id,
            to_epoch_ms(self.scheduled_at),
            to_epoch_ms(self.started_at),
            self.duration_ms,
            self.ok,
            self.status_code,
            self.failure.value if self.failure else None,
            self.error[:MAX_ERROR_LENGTH],
            self.dns_ms,
            self.connect_ms,
            self.tls_ms,
            self.ttfb_ms,
            None if self.tls_expires_at is None else to_epoch_ms(self.tls_expires_at),
        ]

    @classmethod
    def from_wire(cls, row: WireRow) -> CheckResult:
        """The result a checked wire row describes (see ``wire_rows_check``)."""
        m, s, st, d, ok, sc, f, e, a, b, c, t, x = row
        return cls(
            monitor_id=m,
            scheduled_at=from_epoch_ms(s),
            started_at=from_epoch_ms(st),
            duration_ms=d,
            ok=ok,
            status_code=sc,
            failure=None if f is None else FailureKind(f),
            error=e,
            dns_ms=a,
            connect_ms=b,
            tls_ms=c,
            ttfb_ms=t,
            tls_expires_at=None if x is None else from_epoch_ms(x),
        )


WireRow = list[Any]  # one result in WIRE_FIELDS order, as the buffer carries it

# Column limits of check_result (telemetry/migrations/sql/0001_check_result.sql):
# INSERT IGNORE and LOAD DATA would clip an out-of-range value to a warning.
BIGINT_MAX = 2**63 - 1
INT_UNSIGNED_MAX = 2**32 - 1
SMALLINT_UNSIGNED_MAX = 2**16 - 1
DATETIME_MAX_MS = 253402300799999  # 9999-12-31 23:59:59.999
FAILURE_VALUES = frozenset(kind.value for kind in FailureKind)


def payload_encode(results: Sequence[CheckResult]) -> bytes:
    """One buffer entry: a JSON array of wire rows."""
    return orjson.dumps([result.to_wire() for result in results])


def payload_decode(raw: bytes) -> list[Any]:
    """The wire rows of one buffer entry, unchecked (``wire_rows_check`` checks them).

    An entry is a JSON array of wire rows; a JSON object is one result in the named
    form of earlier releases (still in Redis or a spool during an upgrade).
    ``ValueError`` says why the entry as a whole is unreadable."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:  # invalid UTF-8 included
        raise ValueError(f"not JSON: {exc}") from None
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        keys = data.keys()
        if not (keys >= REQUIRED_FIELDS and keys <= KNOWN_FIELDS):
            _raise_for_fields(keys)
        return [[data.get(name, "" if name == "error" else None) for name in WIRE_FIELDS]]
    raise ValueError("not a JSON array of results")


def wire_rows_check(
    rows: list[Any], *, oldest_ms: int, newest_ms: int
) -> tuple[list[WireRow], list[tuple[Any, str]]]:
    """Split wire rows into the valid ones and (row, reason) for the others.

    Valid: every field of the type and range its column takes, the failure kind
    known, and the slot within ``[oldest_ms, newest_ms]`` (the stored window). Ingest
    checks tens of thousands a second, so the common case is one boolean expression
    per row; ``_wire_row_problem`` explains a row that fails it.
    """
    good: list[WireRow] = []
    bad: list[tuple[Any, str]] = []
    for row in rows:
        if type(row) is list and len(row) == WIRE_LENGTH:
            m, s, st, d, ok, sc, f, e, a, b, c, t, x = row
            # type() rather than isinstance(): bool is an int subclass; True is no id.
            if (
                type(m) is int and 0 < m <= BIGINT_MAX
                and type(s) is int and oldest_ms <= s <= newest_ms
                and type(st) is int and 0 <= st <= DATETIME_MAX_MS
                and type(d) is int and 0 <= d <= INT_UNSIGNED_MAX
                and type(ok) is bool
                and (sc is None or (type(sc) is int and 0 <= sc <= SMALLINT_UNSIGNED_MAX))
                and (f is None or f in FAILURE_VALUES)
                and type(e) is str
                and (a is None or (type(a) is int and 0 <= a <= INT_UNSIGNED_MAX))
                and (b is None or (type(b) is int and 0 <= b <= INT_UNSIGNED_MAX))
                and (c is None or (type(c) is int and 0 <= c <= INT_UNSIGNED_MAX))
                and (t is None or (type(t) is int and 0 <= t <= INT_UNSIGNED_MAX))
                and (x is None or (type(x) is int and 0 <= x <= DATETIME_MAX_MS))
            ):  # fmt: skip
                if len(e) > MAX_ERROR_LENGTH:
                    row[7] = e[:MAX_ERROR_LENGTH]
                good.append(row)
                continue
        bad.append((row, _wire_row_problem(row, oldest_ms=oldest_ms, newest_ms=newest_ms)))
    return good, bad


def _wire_row_problem(row: Any, *, oldest_ms: int, newest_ms: int) -> str:
    if type(row) is not list or len(row) != WIRE_LENGTH:
        return f"not a list of the {WIRE_LENGTH} result fields"
    values = dict(zip(WIRE_FIELDS, row, strict=True))
    for name, low, high in WIRE_INTS:
        value = values[name]
        if value is None and name not in REQUIRED_FIELDS:
            continue
        if type(value) is not int or not low <= value <= high:
            return f"{name} must be an integer from {low} to {high}, got {value!r}"
    if type(values["ok"]) is not bool:
        return f"ok must be true or false, got {values['ok']!r}"
    if values["failure"] is not None and values["failure"] not in FAILURE_VALUES:
        return f"unknown failure kind {values['failure']!r}"
    if type(values["error"]) is not str:
        return f"error must be a string, got {values['error']!r}"
    scheduled = values["scheduled_at"]
    if not oldest_ms <= scheduled <= newest_ms:
        return (
            f"scheduled_at {from_epoch_ms(scheduled).isoformat()} is outside the stored "
            "window (the retention period, at most a day ahead)"
        )
    return "invalid"  # unreachable while the two checks agree


def _raise_for_fields(keys: Any) -> None:
    missing = REQUIRED_FIELDS - keys
    if missing:
        raise ValueError(f"missing fields: {', '.join(sorted(missing))}")
    raise ValueError(f"unknown fields: {', '.join(sorted(keys - KNOWN_FIELDS))}")


# check_result's column order: every field but the ones marked not stored.
WIRE_FIELDS = tuple(f.name for f in fields(CheckResult) if f.metadata.get("stored", True))
WIRE_LENGTH = len(WIRE_FIELDS)
KNOWN_FIELDS = frozenset(WIRE_FIELDS)
REQUIRED_FIELDS = frozenset({"monitor_id", "scheduled_at", "started_at", "duration_ms", "ok"})
WIRE_INTS = (
    ("monitor_id", 1, BIGINT_MAX),
    ("scheduled_at", 0, DATETIME_MAX_MS),
    ("started_at", 0, DATETIME_MAX_MS),
    ("duration_ms", 0, INT_UNSIGNED_MAX),
    ("status_code", 0, SMALLINT_UNSIGNED_MAX),
    ("dns_ms", 0, INT_UNSIGNED_MAX),
    ("connect_ms", 0, INT_UNSIGNED_MAX),
    ("tls_ms", 0, INT_UNSIGNED_MAX),
    ("ttfb_ms", 0, INT_UNSIGNED_MAX),
    ("tls_expires_at", 0, DATETIME_MAX_MS),
)
