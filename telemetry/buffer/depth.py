"""Depth and age of the buffer, for /healthz, /metrics and the dashboard."""

from __future__ import annotations

import time
from dataclasses import dataclass

from telemetry.buffer.stream import DEAD_LETTER_COUNT_KEY, DEPTH_KEY, STREAM_KEY, buffer_client


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
