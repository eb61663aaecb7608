"""Heartbeat pings between the web tier and MySQL: their wire row, how a ping becomes a
result, and how ingest stores them (``heartbeat_ping``, telemetry/migrations/sql/).

A ping travels through the Redis buffer like a probe batch does, as one stream entry
(``telemetry.buffer.pings.ping_push``) with two fields: ``r``, the results it is (one
wire row for a success or failure ping, none for /start and /log; see
``telemetry.records``), which ingest stores, rolls up and hands to the live state like
any result; and ``p``, the ping itself as a JSON array in ``PING_FIELDS`` order, which
ingest stores in ``heartbeat_ping`` in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Annotated, Any, Literal

import msgspec

from telemetry.records import MAX_ERROR_LENGTH, FailureKind

PING_KINDS = ("success", "start", "fail", "log", "exit")
MAX_RUN_ID_LENGTH = 64
MAX_USER_AGENT_LENGTH = 200
MAX_REMOTE_ADDR_LENGTH = 45
# The largest body a wire row may carry whatever the setting says (a broken or hostile
# producer must not make ingest write megabytes); HEARTBEAT_PING_BODY_MAX_BYTES is
# the one that bounds what the web tier keeps.
MAX_BODY_CHARS = 1_048_576

# A ping's wire row, in order: the monitor, the paired start (epoch ms, or null), when
# it was received (epoch microseconds), then what the request said.
PING_FIELDS = (
    "monitor_id",
    "started_ms",
    "received_us",
    "kind",
    "exit_status",
    "run_id",
    "method",
    "remote_addr",
    "user_agent",
    "body",
    "body_truncated",
)

PingRow = tuple[
    Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)],
    Annotated[int, msgspec.Meta(ge=0)] | None,
    Annotated[int, msgspec.Meta(ge=0, le=253402300799999999)],
    Literal["success", "start", "fail", "log", "exit"],
    Annotated[int, msgspec.Meta(ge=0, le=255)] | None,
    Annotated[str, msgspec.Meta(max_length=MAX_RUN_ID_LENGTH)],
    Literal["GET", "POST", "HEAD"],
    Annotated[str, msgspec.Meta(max_length=MAX_REMOTE_ADDR_LENGTH)],
    Annotated[str, msgspec.Meta(max_length=MAX_USER_AGENT_LENGTH)],
    Annotated[str, msgspec.Meta(max_length=MAX_BODY_CHARS)],
    bool,
]
_PING_DECODER = msgspec.json.Decoder(PingRow)


def ping_row_decode(raw: bytes) -> PingRow:
    """The checked ping row of a buffer entry's ``p`` field; ``ValueError`` says what is
    wrong with it (the entry becomes a dead letter)."""
    try:
        return _PING_DECODER.decode(raw)
    except msgspec.MsgspecError as exc:
        raise ValueError(f"not a heartbeat ping row: {exc}") from None


def ping_outcome(kind: str, exit_status: int | None) -> tuple[bool, FailureKind | None, str] | None:
    """What a ping says about the job as a result: (ok, failure kind, error), or None
    for a ping that is no verdict (/start, /log). Exit status 0 is a success, 1-255 a
    failure (Healthchecks' semantics)."""
    if kind == "success" or (kind == "exit" and exit_status == 0):
        return True, None, ""
    if kind == "fail":
        return False, FailureKind.JOB_FAILED, "the job reported a failure (/fail)"
    if kind == "exit":
        return False, FailureKind.JOB_FAILED, f"the job exited with status {exit_status}"
    return None


def ping_result_tail(kind: str, exit_status: int | None) -> bytes | None:
    """The end of the ping's result wire row after (monitor id, slot, start, duration),
    e.g. ``,true,null,null,"",null,null,null,null,null,""]``, which the push script
    completes with what only Redis knows; None for a ping that is no result."""
    outcome = ping_outcome(kind, exit_status)
    if outcome is None:
        return None
    ok, failure, error = outcome
    rest = [ok, None, failure.value if failure else None, error[:MAX_ERROR_LENGTH]]
    rest += [None, None, None, None, None, ""]
    return b"," + msgspec.json.encode(rest)[1:]


# Naive UTC, as the DB-API cursor hands DATETIME to MySQL (the stored times are UTC).
_EPOCH = dt.datetime(1970, 1, 1)
_INSERT = (
    "INSERT IGNORE INTO heartbeat_ping (monitor_id, received_at, kind, exit_status, run_id, "
    "duration_ms, method, remote_addr, user_agent, body, body_truncated) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)


def pings_insert(cursor: Any, pings: Sequence[PingRow]) -> int:
    """Insert checked ping rows on the batch's DB-API cursor (inside its transaction),
    skipping ones stored already; returns how many were new. The run time is the
    time from the paired start to this ping (none for a start or an unpaired one)."""
    if not pings:
        return 0
    cursor.executemany(
        _INSERT,
        [
            (
                m,
                _EPOCH + dt.timedelta(microseconds=received_us),
                kind,
                exit_status,
                run_id,
                ping_run_ms(started_ms, received_us),
                method,
                remote,
                agent,
                body,
                truncated,
            )
            for (
                m,
                started_ms,
                received_us,
                kind,
                exit_status,
                run_id,
                method,
                remote,
                agent,
                body,
                truncated,
            ) in pings
        ],
    )
    return int(cursor.rowcount)


def ping_run_ms(started_ms: int | None, received_us: int) -> int | None:
    """Run time (ms) from the paired start ping to a ping received at ``received_us``."""
    if started_ms is None:
        return None
    return max(received_us // 1000 - started_ms, 0)
