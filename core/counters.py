"""Counters for ``/metrics``, kept in Redis hashes (one field per label value).

In Redis rather than in each process's memory, a counter is fleet-wide (every worker
adds to the same field) and outlives the process that added to it, so it only ever
grows, as Prometheus expects of a counter, without its multi-process mode: the app
adds (``HINCRBY``) and never resets. Rates are PromQL's job (``rate()``).

The probe worker's and ingest's counters ride in the pipelines that carry their
results (``telemetry.stats``). The others (notification attempts, service outages)
are added on their own with ``counters_add``, which never raises: a counter is not
worth failing, or stalling, the work it counts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import redis

from core.redis import redis_client

# A counter that waits longer than this for Redis is dropped, not waited for.
COUNTERS_TIMEOUT_SECONDS = 0.5


def counters_add(*, key: str, amounts: Mapping[str, int]) -> bool:
    """Add ``amounts`` to the fields of the hash ``key`` in one round trip (zeros are
    skipped). Returns False, without raising, if Redis did not answer within
    ``COUNTERS_TIMEOUT_SECONDS``: then nothing is counted."""
    moved = {field: amount for field, amount in amounts.items() if amount}
    if not moved:
        return True
    pipe = redis_client(timeout=COUNTERS_TIMEOUT_SECONDS).pipeline(transaction=False)
    for field, amount in moved.items():
        pipe.hincrby(key, field, amount)
    try:
        pipe.execute()
    except redis.RedisError:
        return False
    return True


def counters_read(*, client: redis.Redis, keys: Sequence[str]) -> list[dict[str, int]]:
    """The fields of each hash in ``keys`` as ``{field: count}``, in one round trip.
    Raises ``redis.RedisError`` if Redis does not answer."""
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.hgetall(key)
    return [counts_decode(raw) for raw in pipe.execute()]


def counts_decode(raw: Mapping[bytes, bytes]) -> dict[str, int]:
    """A hash as Redis returns it (bytes to bytes) as ``{field: count}``."""
    return {field.decode(): int(value) for field, value in raw.items()}
