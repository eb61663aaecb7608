"""The buffer's stream: its Redis keys and client."""

from __future__ import annotations

import redis

from core.redis import redis_client

STREAM_KEY = "sentinel:results"
FIELD = b"r"  # the entry's results (telemetry.records.payload_encode)
COUNT_FIELD = b"n"  # how many results the entry holds
PING_FIELD = b"p"  # a heartbeat ping's row (telemetry.pings), beside its results
DEPTH_KEY = "sentinel:results:depth"  # results in the stream (see buffer_depth)
# Results per stream entry: a probe batch (250 by default) is one entry; ingest takes
# whole entries, so this is also how far a batch can overshoot its size.
ENTRY_MAX_RESULTS = 500
GROUP = "ingest"
DEAD_LETTER_KEY = "sentinel:results:dead"
DEAD_LETTER_COUNT_KEY = "sentinel:results:dead:count"


def buffer_client() -> redis.Redis:
    """The buffer's Redis client (``core.redis``: one pool per process, not the cache's)."""
    return redis_client()
