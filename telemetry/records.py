"""The check result: one small record per check, from probe worker to MySQL.

A plain dataclass, not a Django model: millions of them pass through the Redis
buffer an hour, so they are encoded as compact JSON with times as integer epoch
milliseconds, and decoding is strict (a malformed entry raises ``ValueError`` so
that ingest can dead-letter it instead of storing garbage).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any

import orjson

MAX_ERROR_LENGTH = 200


class FailureKind(StrEnum):
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
    INTERNAL = "internal"  # a bug in the checker, never the target's fault


def to_epoch_ms(moment: dt.datetime) -> int:
    return round(moment.timestamp() * 1000)


def from_epoch_ms(value: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(value / 1000, tz=dt.UTC)


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

    def to_json(self) -> bytes:
        # Not dataclasses.asdict: it deep-copies every value, and this runs for every
        # check a probe worker makes.
        data = {name: getattr(self, name) for name in FIELD_NAMES}
        for name in ("scheduled_at", "started_at", "tls_expires_at"):
            if data[name] is not None:
                data[name] = to_epoch_ms(data[name])
        data["failure"] = self.failure.value if self.failure else None
        data["error"] = self.error[:MAX_ERROR_LENGTH]
        return orjson.dumps(data)

    @classmethod
    def from_json(cls, raw: bytes | str) -> CheckResult:
        """Decode one buffer entry; ``ValueError`` says what is wrong with it."""
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:  # invalid UTF-8 included
            raise ValueError(f"not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckResult:
        # Ingest decodes tens of thousands a second: the checks are inlined loops over
        # precomputed field lists rather than one helper call per field.
        keys = data.keys()
        if not (keys >= REQUIRED_FIELDS and keys <= KNOWN_FIELDS):
            _raise_for_fields(keys)
        for name, minimum in REQUIRED_INTS:
            value = data[name]
            # type() rather than isinstance(): bool is an int subclass; True is not an id.
            if type(value) is not int or value < minimum:
                _raise_for_int(name, value, minimum)
        get = data.get
        for name in OPTIONAL_INTS:
            value = get(name)
            if value is not None and (type(value) is not int or value < 0):
                _raise_for_int(name, value, 0)
        ok = data["ok"]
        if type(ok) is not bool:
            raise ValueError(f"ok must be true or false, got {ok!r}")
        tls_expires_at = get("tls_expires_at")
        return cls(
            monitor_id=data["monitor_id"],
            scheduled_at=from_epoch_ms(data["scheduled_at"]),
            started_at=from_epoch_ms(data["started_at"]),
            duration_ms=data["duration_ms"],
            ok=ok,
            status_code=get("status_code"),
            failure=_failure(get("failure")),
            error=_str(get("error", "")),
            dns_ms=get("dns_ms"),
            connect_ms=get("connect_ms"),
            tls_ms=get("tls_ms"),
            ttfb_ms=get("ttfb_ms"),
            tls_expires_at=None if tls_expires_at is None else from_epoch_ms(tls_expires_at),
        )


def _raise_for_fields(keys: Any) -> None:
    missing = REQUIRED_FIELDS - keys
    if missing:
        raise ValueError(f"missing fields: {', '.join(sorted(missing))}")
    raise ValueError(f"unknown fields: {', '.join(sorted(keys - KNOWN_FIELDS))}")


def _raise_for_int(name: str, value: Any, minimum: int) -> None:
    raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"error must be a string, got {value!r}")
    return value[:MAX_ERROR_LENGTH]


def _failure(value: Any) -> FailureKind | None:
    if value is None:
        return None
    try:
        return FailureKind(value)
    except ValueError:
        raise ValueError(f"unknown failure kind {value!r}") from None


# Computed once: probe workers encode and ingest decodes thousands a second.
FIELD_NAMES = tuple(f.name for f in fields(CheckResult))
KNOWN_FIELDS = frozenset(FIELD_NAMES)
REQUIRED_FIELDS = frozenset({"monitor_id", "scheduled_at", "started_at", "duration_ms", "ok"})
REQUIRED_INTS = (("monitor_id", 1), ("scheduled_at", 0), ("started_at", 0), ("duration_ms", 0))
OPTIONAL_INTS = ("status_code", "dns_ms", "connect_ms", "tls_ms", "ttfb_ms", "tls_expires_at")
