"""The Redis write buffer between probe workers and MySQL.

Results are appended to one Redis Stream, a probe batch's results as one entry (up
to ``ENTRY_MAX_RESULTS``; see ``telemetry.records`` for the format); ingest reads
them through a consumer group so that a batch taken by a consumer that dies is
reclaimed by another, and acknowledges (and deletes) entries only after MySQL has
committed them. So the stream holds exactly the results not yet stored: the time in
its first entry ID is the age of the oldest one, and a counter that each push adds
to and each acknowledgement subtracts from, in the same atomic step, is the depth.

When Redis is unreachable a probe worker does not drop its results: ``buffer_push``
retries a few times with backoff, then writes the batch to a local spool directory
(one fsynced file per batch) which the next successful push replays. A replay can
push a result twice (a push that reached Redis but whose reply was lost is retried);
ingest's idempotent key makes that harmless.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson
import redis
from django.conf import settings

from core.reachability import unreachable_line
from core.redis import redis_client
from telemetry.records import CheckResult, payload_encode
from telemetry.stats import stats_count_checks

log = logging.getLogger(__name__)

STREAM_KEY = "sentinel:results"
FIELD = b"r"  # the entry's results (telemetry.records.payload_encode)
COUNT_FIELD = b"n"  # how many results the entry holds
DEPTH_KEY = "sentinel:results:depth"  # results in the stream (see buffer_depth)
# Results per stream entry: a probe batch (250 by default) is one entry; ingest takes
# whole entries, so this is also how far a batch can overshoot its size.
ENTRY_MAX_RESULTS = 500
GROUP = "ingest"
DEAD_LETTER_KEY = "sentinel:results:dead"
DEAD_LETTER_COUNT_KEY = "sentinel:results:dead:count"

# Redis "briefly down" (a restart, a failover) is seconds; beyond these attempts the
# batch goes to the spool rather than stall the probe worker.
PUSH_BACKOFF_SECONDS = (0.1, 0.4)
SPOOL_SUFFIX = ".jsonl"
# A spool file claimed by a process that died mid-replay is taken over after this.
SPOOL_CLAIM_STALE_SECONDS = 300


def buffer_client() -> redis.Redis:
    """The buffer's Redis client (``core.redis``: one pool per process, not the cache's)."""
    return redis_client()


def buffer_push(*, results: Sequence[CheckResult]) -> None:
    """Append a batch of results in one round trip (one entry per
    ``ENTRY_MAX_RESULTS``, and the depth counter, in one MULTI).

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
        _push_with_retries(entries, results)
    except redis.RedisError as exc:
        path = spool_write(payloads=[payload for payload, _ in entries])
        log.warning(
            "%s",
            unreachable_line(
                "redis",
                exc,
                f"{len(results)} results spooled to {path}, replayed on the next successful push",
            ),
        )
        return
    try:
        spool_replay()
    except OSError as exc:  # the push itself succeeded; the spool waits for the next one
        log.warning("cannot replay the result spool %s: %s", _spool_dir(), exc)


Entries = Sequence[tuple[bytes, int]]  # (payload, how many results it holds)


def _push_with_retries(entries: Entries, results: Sequence[CheckResult]) -> None:
    for attempt in range(len(PUSH_BACKOFF_SECONDS) + 1):
        try:
            _push(entries, results)
            return
        except redis.RedisError:
            if attempt == len(PUSH_BACKOFF_SECONDS):
                raise
            time.sleep(PUSH_BACKOFF_SECONDS[attempt])


def _push(entries: Entries, results: Sequence[CheckResult]) -> None:
    # MULTI: the depth counter moves with the entries, never without them.
    pipe = buffer_client().pipeline(transaction=True)
    for payload, count in entries:
        pipe.xadd(STREAM_KEY, {FIELD: payload, COUNT_FIELD: count})
    pipe.incrby(DEPTH_KEY, sum(count for _, count in entries))
    # The /metrics counters ride in the same round trip (a spooled batch is not counted).
    stats_count_checks(pipe, results)
    pipe.execute()


def _count(payload: bytes) -> int:
    """Results in a spooled entry payload."""
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return 1
    return len(data) if isinstance(data, list) else 1


# --- The spool: results kept on local disk while Redis is away ------------------


def _spool_dir() -> Path:
    return Path(settings.TELEMETRY_SPOOL_DIR)


def spool_write(*, payloads: Sequence[bytes]) -> Path:
    """Write one batch durably (temp file, fsync, rename) and return its path."""
    directory = _spool_dir()
    directory.mkdir(parents=True, exist_ok=True)
    name = f"{time.time_ns()}-{os.getpid()}-{uuid.uuid4().hex[:8]}{SPOOL_SUFFIX}"
    temporary = directory / f".{name}.tmp"
    with temporary.open("wb") as handle:
        # Compact JSON never contains a raw newline, so one line is one entry.
        handle.write(b"\n".join(payloads) + b"\n")
        handle.flush()
        os.fsync(handle.fileno())
    final = directory / name
    temporary.rename(final)
    return final


def spool_replay() -> int:
    """Push spooled batches back into the stream, oldest first; return how many
    results were replayed. Stops (keeping the rest) at the first Redis error."""
    replayed = 0
    for claimed in _spool_claims():
        try:
            entries = [(p, _count(p)) for p in claimed.read_bytes().splitlines() if p]
            _push(entries, ())
        except redis.RedisError:
            claimed.rename(claimed.with_name(claimed.name.split(".claimed-")[0]))
            break
        claimed.unlink()
        replayed += sum(count for _, count in entries)
    if replayed:
        log.info("replayed %d spooled results into the Redis buffer", replayed)
    return replayed


def _spool_claims() -> Iterator[Path]:
    """Spool files this process has claimed by renaming them (only one process wins
    a rename), including claims left behind by a process that died."""
    directory = _spool_dir()
    if not directory.is_dir():
        return
    stale_before = time.time() - SPOOL_CLAIM_STALE_SECONDS
    for path in sorted(directory.iterdir()):
        if path.name.endswith(SPOOL_SUFFIX):
            base = path.name
        elif ".claimed-" in path.name and _mtime(path) < stale_before:
            base = path.name.split(".claimed-")[0]
        else:
            continue
        claimed = directory / f"{base}.claimed-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        try:
            path.rename(claimed)
        except FileNotFoundError:
            continue  # another process claimed it first
        os.utime(claimed)
        yield claimed


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return time.time()


def spool_size() -> int:
    """How many batch files wait in this host's spool."""
    directory = _spool_dir()
    if not directory.is_dir():
        return 0
    return sum(1 for path in directory.iterdir() if not path.name.startswith("."))


# --- Depth and age, for /healthz, /metrics and the dashboard --------------------


@dataclass(frozen=True)
class BufferStats:
    depth: int  # results not yet stored in MySQL (pending ones included)
    oldest_age_seconds: float | None  # None when the buffer is empty
    dead_letters: int  # malformed results moved aside since the start

    def as_dict(self) -> dict[str, object]:
        return {
            "depth": self.depth,
            "oldest_age_seconds": self.oldest_age_seconds,
            "dead_letters": self.dead_letters,
        }


def buffer_depth() -> int:
    """How many results wait in the buffer (not yet acknowledged by ingest).

    The counter that pushes and acknowledgements keep; at least one per entry (an
    entry written by something that did not count it still holds a result), and 0
    when the stream is empty whatever the counter says, so a counter that went
    astray (a stream deleted by hand) cannot report a phantom backlog."""
    pipe = buffer_client().pipeline(transaction=True)
    pipe.xlen(STREAM_KEY)
    pipe.get(DEPTH_KEY)
    entries, counted = pipe.execute()
    return max(int(entries), int(counted or 0)) if entries else 0


def buffer_oldest_age_seconds(*, now: float | None = None) -> float | None:
    """Seconds since the oldest waiting result entered the buffer (from its stream
    entry ID, which is Redis' clock in ms), or None when the buffer is empty."""
    first = buffer_client().xrange(STREAM_KEY, count=1)
    if not first:
        return None
    entry_id = first[0][0]
    text = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
    millis = int(text.split("-")[0])
    now = time.time() if now is None else now
    return max(0.0, round(now - millis / 1000, 3))


def buffer_stats() -> BufferStats:
    """Depth, oldest age and dead-letter count in one call (three cheap commands)."""
    dead = buffer_client().get(DEAD_LETTER_COUNT_KEY)
    return BufferStats(buffer_depth(), buffer_oldest_age_seconds(), int(dead or 0))
