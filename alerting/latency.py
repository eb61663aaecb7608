"""The p95 latency rule's window: each monitor's recent check durations in Redis.

A rule "p95 over the last W minutes above X ms" needs the durations of the last W
minutes at every result. Reading them from ``check_result`` would be a range scan
per check; instead each monitor with such a rule keeps a sorted set in Redis,
``sentinel:alerting:latency:<monitor id>``, scored by the check's scheduled time
(epoch seconds), member ``<epoch ms>:<duration ms>`` so that a replayed result is
the same member and counts once. The batch's results go in, entries older than the
longest window are trimmed and the window is read back, all in one pipeline: one
round trip per probe batch, whatever its size. W is at most 60 minutes
(``MAX_LATENCY_WINDOW_MINUTES``), 120 entries at the shortest interval, so the
sorted sets stay small; the key expires an hour after its last write.

Only successful checks are recorded: a failed check is the down rule's business,
as for the consecutive-checks form.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from core.redis import redis_client
from monitors import validators
from telemetry.histogram import percentile
from telemetry.records import CheckResult

KEY = "sentinel:alerting:latency:{monitor_id}"
# Kept past the window so a monitor whose checks pause briefly keeps its history.
EXPIRE_SECONDS = validators.MAX_LATENCY_WINDOW_MINUTES * 60 + 3600

Sample = tuple[float, int]  # (epoch seconds of the check, duration in ms)


def latency_windows_record(
    *, results: Sequence[CheckResult], window_seconds: dict[int, int]
) -> dict[int, list[Sample]]:
    """Record the successful results of the monitors in ``window_seconds`` (monitor id
    to its longest p95 window) and return each one's samples, oldest first, from one
    window before its earliest result in the batch onwards."""
    by_monitor: dict[int, list[CheckResult]] = defaultdict(list)
    for result in results:
        if result.monitor_id in window_seconds:
            by_monitor[result.monitor_id].append(result)
    if not by_monitor:
        return {}
    pipe = redis_client().pipeline(transaction=False)
    order = []
    for monitor_id, batch in by_monitor.items():
        key = KEY.format(monitor_id=monitor_id)
        members = {
            f"{int(r.scheduled_at.timestamp() * 1000)}:{r.duration_ms}": r.scheduled_at.timestamp()
            for r in batch
            if r.ok
        }
        oldest = min(r.scheduled_at.timestamp() for r in batch) - window_seconds[monitor_id]
        if members:
            pipe.zadd(key, members)
        pipe.zremrangebyscore(key, "-inf", f"({oldest}")
        pipe.zrangebyscore(key, oldest, "+inf", withscores=True)
        pipe.expire(key, EXPIRE_SECONDS)
        order.append((monitor_id, bool(members)))
    replies = iter(pipe.execute())
    samples: dict[int, list[Sample]] = {}
    for monitor_id, added in order:
        if added:
            next(replies)
        next(replies)  # the trim
        entries = next(replies)
        next(replies)  # the expiry
        samples[monitor_id] = [
            (float(score), int(member.split(b":", 1)[1])) for member, score in entries
        ]
    return samples


def window_p95(samples: Sequence[Sample], *, end: float, seconds: int) -> tuple[int, int] | None:
    """(p95 in ms, number of checks) of the samples in ``(end - seconds, end]``, or None
    when there are too few checks to speak of a 95th percentile.

    The p95 is the product's one percentile (``telemetry.histogram.percentile``):
    with two or more checks it is never the slowest one alone, so a single slow check
    cannot fire the rule.
    """
    durations = sorted(d for at, d in samples if end - seconds < at <= end)
    if len(durations) < validators.MIN_LATENCY_WINDOW_CHECKS:
        return None
    p95 = percentile(durations, 0.95)
    assert p95 is not None  # at least MIN_LATENCY_WINDOW_CHECKS durations
    return p95, len(durations)
