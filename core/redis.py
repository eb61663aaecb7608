"""The Redis client: one connection pool per process and URL.

The result buffer, the latency windows, the ingest locks and the health probe all
take their client here, so that timeouts are set in one place. (Django's cache has
its own pool, configured in ``CACHES``.)
"""

from __future__ import annotations

from functools import lru_cache

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
