"""The Redis write buffer between probe workers and MySQL.

Results are appended to one Redis Stream; ingest reads them through a consumer
group so that a batch taken by a consumer that dies is reclaimed by another, and
acknowledges (and deletes) entries only after MySQL has committed them.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import redis
from django.conf import settings

from telemetry.records import CheckResult

STREAM_KEY = "sentinel:results"
FIELD = b"r"


@lru_cache(maxsize=1)
def buffer_client() -> redis.Redis:
    """One connection pool per process for the buffer (not the cache's)."""
    return redis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=5, health_check_interval=30
    )


def buffer_push(*, results: Sequence[CheckResult]) -> None:
    """Append a batch of results in one round trip (a pipeline of XADDs)."""
    if not results:
        return
    pipe = buffer_client().pipeline(transaction=False)
    for result in results:
        pipe.xadd(STREAM_KEY, {FIELD: result.to_json()})
    pipe.execute()


def buffer_depth() -> int:
    """How many results wait in the buffer (not yet acknowledged by ingest)."""
    return int(buffer_client().xlen(STREAM_KEY))
