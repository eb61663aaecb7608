"""The check result: one small record per check, from probe worker to MySQL.

A plain dataclass, not a Django model: millions of them pass through the Redis
buffer an hour, so they are encoded as compact JSON with times as integer epoch
milliseconds, and decoding is strict (a malformed entry raises ``ValueError`` so
that ingest can dead-letter it instead of storing garbage).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any

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
        # Shallow on purpose: dataclasses.asdict deep-copies every value and cost
        # ~0.5 ms per result, most of the probe worker's time at 1,000+ results/s.
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in ("scheduled_at", "started_at", "tls_expires_at"):
            if data[name] is not None:
                data[name] = to_epoch_ms(data[name])
        data["failure"] = self.failure.value if self.failure else None
        data["error"] = self.error[:MAX_ERROR_LENGTH]
        return json.dumps(data, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes | str) -> CheckResult:
        """Decode one buffer entry; ``ValueError`` says what is wrong with it."""
        try:
            data = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckResult:
        known = {f.name for f in fields(cls)}
        missing = {"monitor_id", "scheduled_at", "started_at", "duration_ms", "ok"} - data.keys()
        if missing:
            raise ValueError(f"missing fields: {', '.join(sorted(missing))}")
        unknown = data.keys() - known
        if unknown:
            raise ValueError(f"unknown fields: {', '.join(sorted(unknown))}")
        return cls(
            monitor_id=_int(data, "monitor_id", minimum=1),
            scheduled_at=from_epoch_ms(_int(data, "scheduled_at", minimum=0)),
            started_at=from_epoch_ms(_int(data, "started_at", minimum=0)),
            duration_ms=_int(data, "duration_ms", minimum=0),
            ok=_bool(data, "ok"),
            status_code=_optional_int(data, "status_code"),
            failure=_failure(data.get("failure")),
            error=_str(data.get("error", "")),
            dns_ms=_optional_int(data, "dns_ms"),
            connect_ms=_optional_int(data, "connect_ms"),
            tls_ms=_optional_int(data, "tls_ms"),
            ttfb_ms=_optional_int(data, "ttfb_ms"),
            tls_expires_at=(
                None
                if data.get("tls_expires_at") is None
                else from_epoch_ms(_int(data, "tls_expires_at", minimum=0))
            ),
        )


def _int(data: dict[str, Any], name: str, *, minimum: int) -> int:
    value = data[name]
    # bool is an int subclass; True is not a monitor id.
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _optional_int(data: dict[str, Any], name: str) -> int | None:
    return None if data.get(name) is None else _int(data, name, minimum=0)


def _bool(data: dict[str, Any], name: str) -> bool:
    value = data[name]
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")
    return value


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
