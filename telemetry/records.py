"""The check result: one small record per check, from probe worker to MySQL.

A plain dataclass, not a Django model: millions of them pass through the Redis
buffer an hour. A buffer entry carries a probe batch's results as one JSON array of
"wire rows": lists in ``WIRE_FIELDS`` order (check_result's columns up to
``tls_expires_at``, then ``tls_expiring_subject``, which is not a column, then
``region``, which is), times as integer epoch milliseconds. Rows of the first 13 or
14 elements only, from releases before the subject or before regions, are still read
(subject "", region "local"). Ingest decodes and checks an entry in one pass
of msgspec's C decoder against each element's type and column range
(``wire_rows_decode``), so that a malformed row becomes a dead letter instead of
garbage in MySQL, and stores the rows (tuples) without building a ``CheckResult``
for each.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Annotated, Any, Literal

import msgspec
import orjson

from core.regions import LOCAL, REGION_PATTERN
from core.time import from_epoch_ms, to_epoch_ms

MAX_ERROR_LENGTH = 200
MAX_SUBJECT_LENGTH = 200


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
    # Heartbeat monitors: the job reported a failure (a /fail ping or a non-zero exit
    # status), or no ping came by the deadline (due time plus grace).
    JOB_FAILED = "job_failed"
    MISSED = "missed"
    INTERNAL = "internal"  # a bug in the checker, never the target's fault


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of one check of one monitor for one scheduled slot, from one region.

    ``(monitor_id, scheduled_at, region)`` identifies the check: the dispatcher hands
    out each slot once to each of the monitor's regions, so storing it twice is a
    replay and must be a no-op.
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
    # The probe region that made the check (core.regions). For a slot's verdict across
    # regions (monitors.regions), the regions whose checks failed, comma-separated.
    region: str = LOCAL

    def to_wire(self) -> list[Any]:
        """The result as the buffer carries it: a list in ``WIRE_FIELDS`` order (all
        15, the subject "" when there is none), times as integer epoch milliseconds.
        Not ``dataclasses.astuple``, which deep-copies every value, and this runs for
        every check a probe worker makes."""
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
            self.tls_expiring_subject[:MAX_SUBJECT_LENGTH],
            self.region,
        ]

    @classmethod
    def from_wire(cls, row: Sequence[Any]) -> CheckResult:
        """The result a checked wire row describes (see ``wire_rows_decode``); a row
        of 13 elements has no subject, one of 13 or 14 no region."""
        m, s, st, d, ok, sc, f, e, a, b, c, t, x, *rest = row
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
            tls_expiring_subject=rest[0] if rest else "",
            region=rest[1] if len(rest) > 1 else LOCAL,
        )


# A checked row: a tuple of the WIRE_LENGTH elements in WIRE_FIELDS order (ingest's
# rows), or a list as ``to_wire`` returns it.
WireRow = Sequence[Any]

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
        return [[data.get(name, _NAMED_DEFAULTS.get(name)) for name in WIRE_FIELDS]]
    raise ValueError("not a JSON array of results")


def wire_rows_decode(
    raw: bytes, *, oldest_ms: int, newest_ms: int
) -> tuple[list[WireRow], list[tuple[Any, str]]]:
    """The valid wire rows of one buffer entry, as tuples of ``WIRE_LENGTH``, and
    (row, reason) for the others; ``ValueError`` says why the whole entry is
    unreadable.

    Valid: every element of the type and range its column takes, the failure kind
    known, the texts within their length, and the slot within ``[oldest_ms,
    newest_ms]`` (the stored window). The common case is one typed decode in C and
    a min and max of the slots; an entry that fails it (a bad row, a long text, a
    13-element row among 14, the named form) is checked row by row
    (``wire_rows_check``), so its good rows are still stored.
    """
    for width, decoder in _ENTRY_DECODERS:
        try:
            rows: list[Any] = decoder.decode(raw)
        except msgspec.MsgspecError:
            continue
        if width < WIRE_LENGTH:
            rows = [(*row, *_PADDING[width]) for row in rows]
        scheduled = [row[1] for row in rows]
        if not scheduled or (oldest_ms <= min(scheduled) and max(scheduled) <= newest_ms):
            return rows, []
        return wire_rows_check(rows, oldest_ms=oldest_ms, newest_ms=newest_ms)
    return wire_rows_check(payload_decode(raw), oldest_ms=oldest_ms, newest_ms=newest_ms)


def wire_rows_check(
    rows: Sequence[Any], *, oldest_ms: int, newest_ms: int
) -> tuple[list[WireRow], list[tuple[Any, str]]]:
    """Split decoded wire rows into the valid ones (as ``wire_rows_decode`` returns
    them, texts clipped to their length) and (row, reason) for the others."""
    good: list[WireRow] = []
    bad: list[tuple[Any, str]] = []
    for row in rows:
        checked, refusal = _row_check(row)
        if checked is not None and oldest_ms <= checked[1] <= newest_ms:
            good.append(checked)
            continue
        why = _wire_row_problem(row, oldest_ms=oldest_ms, newest_ms=newest_ms)
        bad.append((row, why or refusal))
    return good, bad


def _row_check(row: Any) -> tuple[tuple[Any, ...] | None, str]:
    """The row as a checked tuple of ``WIRE_LENGTH`` (None if it is not one), and
    msgspec's refusal."""
    if type(row) not in (list, tuple) or len(row) not in _ROW_TYPES:
        return None, ""
    row = list(row)
    for index, limit in _CLIPPED:  # a producer that did not clip them
        if index < len(row) and type(row[index]) is str and len(row[index]) > limit:
            row[index] = row[index][:limit]
    try:
        checked = msgspec.convert(row, _ROW_TYPES[len(row)])
    except msgspec.ValidationError as exc:
        return None, str(exc)
    return (*checked, *_PADDING[len(checked)]) if len(checked) < WIRE_LENGTH else checked, ""


def _wire_row_problem(row: Any, *, oldest_ms: int, newest_ms: int) -> str:
    if type(row) not in (list, tuple) or len(row) not in _ROW_TYPES:
        return (
            f"not a list of the {OLDEST_WIDTH} result fields (or {OLDEST_WIDTH + 1}, with "
            f"tls_expiring_subject, or {WIRE_LENGTH}, with region)"
        )
    values = dict(zip(WIRE_FIELDS, row, strict=False))
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
    for name in TEXT_FIELDS:
        if type(values.get(name, "")) is not str:
            return f"{name} must be a string, got {values[name]!r}"
    region = values.get("region", LOCAL)
    if type(region) is not str or not REGION_PATTERN.fullmatch(region):
        return f"region must be a region name (core.regions), got {region!r}"
    scheduled = values["scheduled_at"]
    if not oldest_ms <= scheduled <= newest_ms:
        return (
            f"scheduled_at {from_epoch_ms(scheduled).isoformat()} is outside the stored "
            "window (the retention period, at most a day ahead)"
        )
    return ""  # msgspec's refusal says it (checks that agree leave nothing here)


def _raise_for_fields(keys: Any) -> None:
    missing = REQUIRED_FIELDS - keys
    if missing:
        raise ValueError(f"missing fields: {', '.join(sorted(missing))}")
    raise ValueError(f"unknown fields: {', '.join(sorted(keys - KNOWN_FIELDS))}")


# A wire row's elements: every field of CheckResult in order; STORED_FIELDS are the
# check_result columns among them (all but the subject), in the same order.
WIRE_FIELDS = tuple(f.name for f in fields(CheckResult))
STORED_FIELDS = tuple(f.name for f in fields(CheckResult) if f.metadata.get("stored", True))
WIRE_LENGTH = len(WIRE_FIELDS)
# Rows of releases before the subject (13) and before regions (14) are still read,
# padded with what they lacked.
OLDEST_WIDTH = WIRE_FIELDS.index("tls_expiring_subject")
_PADDING = {OLDEST_WIDTH: ("", LOCAL), OLDEST_WIDTH + 1: (LOCAL,)}
_NAMED_DEFAULTS = {"error": "", "tls_expiring_subject": "", "region": LOCAL}
KNOWN_FIELDS = frozenset(WIRE_FIELDS)
REQUIRED_FIELDS = frozenset({"monitor_id", "scheduled_at", "started_at", "duration_ms", "ok"})
TEXT_FIELDS = ("error", "tls_expiring_subject")
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
_TEXT_LIMITS = {"error": MAX_ERROR_LENGTH, "tls_expiring_subject": MAX_SUBJECT_LENGTH}
_CLIPPED = tuple((WIRE_FIELDS.index(name), limit) for name, limit in _TEXT_LIMITS.items())


def _element_type(name: str) -> Any:
    """The msgspec type of one element: its column's type and range (``WIRE_INTS``);
    strict, so true is no integer and 1 is no boolean."""
    for int_name, low, high in WIRE_INTS:
        if name == int_name:
            ranged = Annotated[int, msgspec.Meta(ge=low, le=high)]
            return ranged if name in REQUIRED_FIELDS else ranged | None
    if name == "ok":
        return bool
    if name == "failure":
        kinds: Any = Literal.__getitem__(tuple(sorted(FAILURE_VALUES)))
        return kinds | None
    if name == "region":
        return Annotated[str, msgspec.Meta(pattern=f"^{REGION_PATTERN.pattern}$")]
    return Annotated[str, msgspec.Meta(max_length=_TEXT_LIMITS[name])]


# The types are built from the tables above at import (so mypy sees them as values):
# tuple[...] of each element's type, for rows of 15 elements, of 14 and of 13.
_ROW_TYPES: dict[int, Any] = {
    width: tuple.__class_getitem__(tuple(_element_type(name) for name in WIRE_FIELDS[:width]))
    for width in (WIRE_LENGTH, OLDEST_WIDTH + 1, OLDEST_WIDTH)
}
# An entry of rows of all 15 elements, then of 14 (before regions), then of 13.
_ENTRY_DECODERS = tuple(
    (width, msgspec.json.Decoder(list.__class_getitem__(_ROW_TYPES[width]))) for width in _ROW_TYPES
)
