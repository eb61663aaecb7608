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

from telemetry.buffer.consumer import DeadLetter, Entry, buffer_ack, buffer_take
from telemetry.buffer.depth import (
    BufferStats,
    buffer_depth,
    buffer_oldest_age_seconds,
    buffer_stats,
)
from telemetry.buffer.push import buffer_push, spool_replay
from telemetry.buffer.spool import spool_size, spool_write
from telemetry.buffer.stream import (
    COUNT_FIELD,
    DEAD_LETTER_COUNT_KEY,
    DEAD_LETTER_KEY,
    DEPTH_KEY,
    ENTRY_MAX_RESULTS,
    FIELD,
    GROUP,
    STREAM_KEY,
    buffer_client,
)

__all__ = [
    "COUNT_FIELD",
    "DEAD_LETTER_COUNT_KEY",
    "DEAD_LETTER_KEY",
    "DEPTH_KEY",
    "ENTRY_MAX_RESULTS",
    "FIELD",
    "GROUP",
    "STREAM_KEY",
    "BufferStats",
    "DeadLetter",
    "Entry",
    "buffer_ack",
    "buffer_client",
    "buffer_depth",
    "buffer_oldest_age_seconds",
    "buffer_push",
    "buffer_stats",
    "buffer_take",
    "spool_replay",
    "spool_size",
    "spool_write",
]
