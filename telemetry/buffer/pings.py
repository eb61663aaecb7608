"""The web tier's side of heartbeat pings: one Redis round trip per ping.

``ping_push`` runs one Lua script that, atomically: finds the monitor of the ping URL
in the routes hash (kept by ``monitors.heartbeats``), counts the URL's pings of the
current minute (refusing over the limit), pairs a success or failure with the start
ping of its run (``rid``), records when the monitor last pinged (for the heartbeat
pass), and appends the ping to the buffer's stream with the depth counter, as the
probe workers' pushes do. Redis runs a script whole or not at all, so a ping answered
"stored" is in the stream (as durable as every result there), and a ping refused is
not. See ``telemetry.pings`` for the entry's two fields.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import msgspec

from telemetry.buffer.stream import (
    COUNT_FIELD,
    DEPTH_KEY,
    FIELD,
    PING_FIELD,
    STREAM_KEY,
    buffer_client,
)
from telemetry.pings import ping_result_tail

STARTS_KEY = "sentinel:heartbeat:starts:"  # + monitor id: hash run id -> start epoch ms
LAST_PING_KEY = "sentinel:heartbeat:last-ping"  # hash monitor id -> epoch ms of a verdict
RATE_KEY = "sentinel:heartbeat:rate:"  # + ping URL + minute: pings counted
# A start waits this long for its end; a run longer than this has no run time (as in
# Healthchecks, whose "run time" also ends at 12 hours).
START_KEPT_SECONDS = 12 * 3600

_PUSH = """
local id = redis.call('HGET', KEYS[1], ARGV[1])
if not id then
    if redis.call('EXISTS', KEYS[1]) == 0 then return -2 end
    return -1
end
local rate = KEYS[4] .. ARGV[1] .. ':' .. ARGV[3]
local count = redis.call('INCR', rate)
if count == 1 then redis.call('EXPIRE', rate, 120) end
if count > tonumber(ARGV[4]) then return -3 end
local now_ms = ARGV[2]
local starts = KEYS[5] .. id
local started = false
if ARGV[5] == 'start' then
    redis.call('HSET', starts, ARGV[6], now_ms)
    redis.call('EXPIRE', starts, ARGV[10])
elseif ARGV[7] ~= '' then
    started = redis.call('HGET', starts, ARGV[6])
    if started then redis.call('HDEL', starts, ARGV[6]) end
end
local results = '[]'
if ARGV[7] ~= '' then
    local run = 0
    if started then run = math.max(tonumber(now_ms) - tonumber(started), 0) end
    -- A result's slot is its key: two verdicts of one monitor in one millisecond get
    -- consecutive ones, so neither is taken for a replay of the other.
    local slot = tonumber(now_ms)
    local last = tonumber(redis.call('HGET', KEYS[6], id) or '0')
    if slot <= last then slot = last + 1 end
    results = '[[' .. id .. ',' .. slot .. ',' .. now_ms .. ',' .. run .. ARGV[7] .. ']'
    redis.call('HSET', KEYS[6], id, slot)
end
local ping = '[' .. id .. ',' .. (started or 'null') .. ',' .. string.sub(ARGV[8], 2)
redis.call('XADD', KEYS[2], '*', ARGV[9], results, ARGV[11], 1, ARGV[12], ping)
redis.call('INCRBY', KEYS[3], 1)
return tonumber(id)
"""


class PingOutcome(enum.Enum):
    STORED = "stored"
    UNKNOWN = "unknown"  # no monitor has this ping URL
    NO_ROUTES = "no-routes"  # the routes hash is missing: rebuild it, then try again
    RATE_LIMITED = "rate-limited"


@dataclass(frozen=True)
class Ping:
    """One ping as the web tier received it."""

    route: str  # the routes hash field: the UUID, or "<ping key>/<slug>"
    received_us: int  # epoch microseconds
    kind: str  # telemetry.pings.PING_KINDS
    exit_status: int | None
    run_id: str
    method: str
    remote_addr: str
    user_agent: str
    body: str
    body_truncated: bool


_scripts: dict[int, Any] = {}


def ping_push(*, ping: Ping, routes_key: str, limit_per_minute: int) -> tuple[PingOutcome, int]:
    """Store ``ping`` in the buffer in one round trip (see the module docstring);
    returns the outcome and the monitor id (0 unless stored). Raises
    ``redis.RedisError`` when Redis is unreachable: nothing was stored then."""
    client = buffer_client()
    script = _scripts.get(id(client))
    if script is None:
        script = _scripts[id(client)] = client.register_script(_PUSH)
    now_ms = ping.received_us // 1000
    tail = ping_result_tail(ping.kind, ping.exit_status) or b""
    row = msgspec.json.encode(
        [
            ping.received_us,
            ping.kind,
            ping.exit_status,
            ping.run_id,
            ping.method,
            ping.remote_addr,
            ping.user_agent,
            ping.body,
            ping.body_truncated,
        ]
    )
    reply = int(
        script(
            keys=[routes_key, STREAM_KEY, DEPTH_KEY, RATE_KEY, STARTS_KEY, LAST_PING_KEY],
            args=[
                ping.route,
                now_ms,
                now_ms // 60_000,
                limit_per_minute,
                ping.kind,
                ping.run_id,
                tail,
                row,
                FIELD,
                START_KEPT_SECONDS,
                COUNT_FIELD,
                PING_FIELD,
            ],
        )
    )
    if reply > 0:
        return PingOutcome.STORED, reply
    return _REFUSALS[reply], 0


# 0: the routes hash's marker field, which no ping URL names.
_REFUSALS = {
    0: PingOutcome.UNKNOWN,
    -1: PingOutcome.UNKNOWN,
    -2: PingOutcome.NO_ROUTES,
    -3: PingOutcome.RATE_LIMITED,
}


def last_pings(*, monitor_ids: list[int]) -> dict[int, int]:
    """When each of ``monitor_ids`` last sent a success or failure ping (epoch ms), as
    the web tier recorded it: ahead of ingest, so the heartbeat pass never calls a
    heartbeat missed whose ping is still in the buffer. Raises ``redis.RedisError``."""
    if not monitor_ids:
        return {}
    values = buffer_client().hmget(LAST_PING_KEY, monitor_ids)
    return {m: int(v) for m, v in zip(monitor_ids, values, strict=True) if v is not None}
