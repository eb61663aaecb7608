"""The Redis client: one connection pool per process and URL.

The result buffer, the latency windows, the ingest locks and the health probe all
take their client here, so that timeouts are set in one place. (Django's cache has
its own pool, configured in ``CACHES``.)
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import redis
from django.conf import settings

CONNECT_TIMEOUT_SECONDS = 2.0
SOCKET_TIMEOUT_SECONDS = 5.0


def redis_client(url: str | None = None, *, timeout: float = SOCKET_TIMEOUT_SECONDS) -> redis.Redis:
    """The shared client for ``url`` (default ``settings.REDIS_URL``); ``timeout`` is
    the socket timeout in seconds (the connect timeout is at most 2 s)."""
    return _client(url or settings.REDIS_URL, timeout)


@lru_cache(maxsize=8)
def _client(url: str, timeout: float) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=min(CONNECT_TIMEOUT_SECONDS, timeout),
        socket_timeout=timeout,
        health_check_interval=30,
    )


def persistence_warning(client: redis.Redis | None = None) -> str | None:
    """One line when the Redis behind ``client`` (default: ``redis_client()``) keeps
    nothing on disk, else None.

    The write buffer lives in Redis: results that wait there for ingest are lost if a
    Redis without persistence restarts. Persistence is off when the append-only file is
    off (``INFO persistence``: ``aof_enabled:0``) and no RDB snapshot points are set
    (``CONFIG GET save`` empty). Where ``CONFIG`` is not allowed (managed services),
    only the append-only file is judged. Raises ``redis.RedisError`` if Redis does not
    answer.
    """
    client = client or redis_client()
    info: dict[str, Any] = client.info("persistence")
    if int(info.get("aof_enabled", 0)):
        return None
    try:
        snapshots = str(client.config_get("save").get("save", "")).strip()
    except redis.ResponseError:
        snapshots = ""
    if snapshots:
        return None
    return (
        "Redis keeps nothing on disk (appendonly no, no RDB save points): results waiting "
        "in the write buffer are lost if it restarts; run it with --appendonly yes "
        "(appendfsync everysec), see docs/deploying.md#redis"
    )
