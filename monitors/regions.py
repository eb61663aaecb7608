"""Probe regions on the monitors' side: which regions check a slot, the token that
binds a remote region's work to the slots it was sent, and a slot's verdict across
regions.

**Confirmation across regions.** A slot sent to ``n`` regions *failed* when at least
``k`` of them report it failed (``Monitor.regions_confirm``, by default a majority:
``n // 2 + 1``), and *passed* when ``n - k + 1`` report success, so that ``k``
failures can no longer come. Until one of the two is reached the slot has no verdict
and moves nothing yet. A region that did not answer by the slot's deadline
(``slot_deadline_ms``: its workers gone, its message expired) is unknown, never a
failure: a slot past its deadline with fewer than ``k`` failures passed. That is
decided when the monitor's next results arrive. Once reached, a verdict is final
(both thresholds at once would need more answers than regions): a region's result
that arrives after it changes nothing. The monitor's confirmation rules (failed
checks in a row, failures among recent checks, successes to recover) then apply to
the verdicts of its slots as they apply to the checks of a monitor with one region.
A monitor checked from one region has the verdict of its one result.

**Tokens.** A batch for a remote region carries ``slots_token(region, pairs)``, an
HMAC of the region and the slots under the central site's ``SECRET_KEY``, which a
region never has. The region's results come back with the batch's slots and token;
the central consumer stores a result only if the token is right and the result's
monitor, slot and region are among them (``monitors.batch.results_accept``). A region
can therefore store results only for the slots it was sent.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hmac
import time
from collections.abc import Sequence
from dataclasses import dataclass

import orjson
import redis
from celery import current_app
from django.conf import settings
from django.utils.crypto import salted_hmac

from core.broker import queue_depth
from core.regions import probe_queue
from telemetry.buffer import buffer_client
from telemetry.records import CheckResult
from telemetry.stats import RegionSeen, stats_regions

TOKEN_SALT = "monitors.regions.slots"  # noqa: S105 (a salt, not a secret)


def monitor_regions(chosen: Sequence[str] | None) -> tuple[str, ...]:
    """The regions a monitor's slots go to: those it chose that are still configured
    (``SENTINEL_REGIONS``), or all of them when it chose none (or none remain)."""
    configured = settings.SENTINEL_REGIONS
    if chosen:
        kept = tuple(region for region in configured if region in chosen)
        if kept:
            return kept
    return tuple(configured)


def regions_quorum(*, regions: int, confirm: int | None) -> int:
    """``k``: how many of ``regions`` regions must see a slot fail (``confirm``, or a
    majority when it is None), at least 1 and at most ``regions``."""
    wanted = confirm if confirm else regions // 2 + 1
    return max(1, min(wanted, regions))


def slots_token(*, region: str, pairs: Sequence[Sequence[int]]) -> str:
    """The HMAC-SHA256 (hex) of ``region`` and the slots ``[[monitor_id, epoch_ms],
    ...]`` under ``SECRET_KEY`` (Django's ``salted_hmac``)."""
    message = region.encode() + b"\n" + orjson.dumps([[int(m), int(s)] for m, s in pairs])
    return salted_hmac(TOKEN_SALT, message, algorithm="sha256").hexdigest()


def slots_token_valid(*, region: str, pairs: Sequence[Sequence[int]], token: str) -> bool:
    """Whether ``token`` is ``slots_token`` of ``region`` and ``pairs`` (constant time)."""
    return hmac.compare_digest(slots_token(region=region, pairs=pairs), str(token))


def slot_verdict(
    results: Sequence[CheckResult], *, regions: int, quorum: int, expired: bool = False
) -> CheckResult | None:
    """The verdict of one slot from its regions' ``results`` (one per region), or None
    while it has none (see the module docstring); ``expired``: the slot's deadline has
    passed, so the regions that did not answer are unknown and the slot passed unless
    ``quorum`` failed.

    A failed verdict is the first failed result in region order, its ``region`` the
    failed regions joined by commas; a passed one the first passed result (or, passed
    by the deadline with failures only, the first result as a pass), its
    ``duration_ms`` the median of the passed ones."""
    if regions <= 1 and len(results) == 1:
        return results[0]
    ordered = sorted(results, key=lambda r: r.region)
    failed = [r for r in ordered if not r.ok]
    passed = [r for r in ordered if r.ok]
    if len(failed) >= quorum:
        return dataclasses.replace(failed[0], region=",".join(r.region for r in failed))
    if passed and (expired or len(passed) >= regions - quorum + 1):
        durations = sorted(r.duration_ms for r in passed)
        return dataclasses.replace(
            passed[0],
            duration_ms=durations[len(durations) // 2],
            region=",".join(r.region for r in passed),
        )
    if expired and ordered:
        first = ordered[0]
        return dataclasses.replace(first, ok=True, failure=None, error="", region=first.region)
    return None


def slot_deadline_ms(slot_ms: int, *, timeout_seconds: int) -> int:
    """When a slot's regions that have not answered become unknown (epoch ms): the
    batch's expiry (``SENTINEL_PROBE_EXPIRE_SECONDS``) plus the monitor's timeout."""
    return slot_ms + (settings.SENTINEL_PROBE_EXPIRE_SECONDS + timeout_seconds) * 1000


@dataclass(frozen=True)
class RegionStatus:
    """What the central site knows of a region's workers (``/healthz``, ``/metrics``).

    ``seen_seconds_ago``: since its last results reached the buffer (None: never, or
    Redis did not answer); ``lag_ms``: how late its newest checks started; ``queued``
    and ``workers``: messages waiting on its queue and the consumers of it (None when
    RabbitMQ did not answer); ``silent``: no worker consumes its queue, or no result
    came for ``SENTINEL_REGION_SILENT_SECONDS``."""

    name: str
    seen_seconds_ago: float | None
    lag_ms: int | None
    queued: int | None
    workers: int | None
    silent: bool

    def as_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def regions_status() -> list[RegionStatus]:
    """Each of ``SENTINEL_REGIONS``' status, in their order. One Redis read and one
    passive queue declare per region; a service that does not answer leaves its
    fields None."""
    try:
        seen = stats_regions(client=buffer_client())
    except redis.RedisError:
        seen = {}
    now_ms = time.time_ns() // 1_000_000
    return [_region_status(name, seen.get(name), now_ms) for name in settings.SENTINEL_REGIONS]


def _region_status(name: str, seen: RegionSeen | None, now_ms: int) -> RegionStatus:
    queued: int | None = None
    workers: int | None = None
    # RabbitMQ away, or the queue not declared yet: unknown.
    with contextlib.suppress(Exception):
        queued, workers = queue_depth(app=current_app, name=probe_queue(name))
    ago = None if seen is None else max(0.0, (now_ms - seen.seen_ms) / 1000)
    silent = workers == 0 or ago is None or ago > settings.SENTINEL_REGION_SILENT_SECONDS
    lag = None if seen is None else seen.lag_ms
    return RegionStatus(name, ago, lag, queued, workers, silent)
