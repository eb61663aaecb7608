"""The writer side: probe workers append a batch of results in one round trip."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence

import orjson
import redis

from core.reachability import reachable_log, unreachable_log
from telemetry.buffer.spool import spool_claims, spool_dir, spool_write
from telemetry.buffer.stream import (
    COUNT_FIELD,
    DEPTH_KEY,
    ENTRY_MAX_RESULTS,
    FIELD,
    STREAM_KEY,
    buffer_client,
)
from telemetry.records import CheckResult, payload_encode
from telemetry.stats import stats_count_checks

log = logging.getLogger(__package__)  # one logger for the package, as before the split

# Redis "briefly down" (a restart, a failover) is seconds; beyond these attempts the
# batch goes to the spool rather than stall the probe worker.
PUSH_BACKOFF_SECONDS = (0.1, 0.4)


def buffer_push(*, results: Sequence[CheckResult], kinds: Mapping[int, str] | None = None) -> None:
    """Append a batch of results in one round trip (one entry per
    ``ENTRY_MAX_RESULTS``, and the depth counter, in one MULTI), with the check
    counters of ``/metrics`` (``telemetry.stats``; ``kinds`` maps monitor ids to
    monitor kinds, a monitor missing from it counts as "unknown").

    Never drops a result: if Redis stays unreachable through the retries, the batch is
    spooled to disk and replayed by the next push that succeeds. Raises only if the
    spool cannot be written either (``OSError``).
    """
    if not results:
        return
    chunks = [
        results[offset : offset + ENTRY_MAX_RESULTS]
        for offset in range(0, len(results), ENTRY_MAX_RESULTS)
    ]
    entries = [(payload_encode(chunk), len(chunk)) for chunk in chunks]
    try:
        _push_with_retries(entries, results, kinds or {})
    except redis.RedisError as exc:
        path = spool_write(payloads=[payload for payload, _ in entries])
        then = f"{len(results)} results spooled to {path}, replayed on the next successful push"
        unreachable_log(log, "redis", exc, then)
        return
    reachable_log(log, "redis", "spooled results are replayed into the buffer")
    try:
        spool_replay()
    except OSError as exc:  # the push itself succeeded; the spool waits for the next one
        log.warning("cannot replay the result spool %s: %s", spool_dir(), exc)


Entries = Sequence[tuple[bytes, int]]  # (payload, how many results it holds)


def _push_with_retries(
    entries: Entries, results: Sequence[CheckResult], kinds: Mapping[int, str]
) -> None:
    for attempt in range(len(PUSH_BACKOFF_SECONDS) + 1):
        try:
            _push(entries, results, kinds)
            return
        except redis.RedisError:
            if attempt == len(PUSH_BACKOFF_SECONDS):
                raise
            time.sleep(PUSH_BACKOFF_SECONDS[attempt])


def _push(entries: Entries, results: Sequence[CheckResult], kinds: Mapping[int, str]) -> None:
    # MULTI: the depth counter moves with the entries, never without them.
    pipe = buffer_client().pipeline(transaction=True)
    for payload, count in entries:
        pipe.xadd(STREAM_KEY, {FIELD: payload, COUNT_FIELD: count})
    pipe.incrby(DEPTH_KEY, sum(count for _, count in entries))
    # The /metrics counters ride in the same round trip, and in the MULTI: a batch
    # retried after a lost reply is counted as often as it is pushed. A spooled batch
    # is not counted (its replay passes no results).
    stats_count_checks(pipe, results, kinds)
    pipe.execute()


def _count(payload: bytes) -> int:
    """Results in a spooled entry payload."""
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return 1
    return len(data) if isinstance(data, list) else 1


def spool_replay() -> int:
    """Push spooled batches back into the stream, oldest first; return how many
    results were replayed. Stops (keeping the rest) at the first Redis error."""
    replayed = 0
    for claimed in spool_claims():
        try:
            entries = [(p, _count(p)) for p in claimed.read_bytes().splitlines() if p]
            _push(entries, (), {})
        except redis.RedisError:
            claimed.rename(claimed.with_name(claimed.name.split(".claimed-")[0]))
            break
        claimed.unlink()
        replayed += sum(count for _, count in entries)
    if replayed:
        log.info("replayed %d spooled results into the Redis buffer", replayed)
    return replayed
