"""Probe regions on the monitors' side: which regions check a slot, the token that
binds a remote region's work to the slots it was sent, and a slot's verdict across
regions.

**Confirmation across regions.** A slot sent to ``n`` regions *failed* when at least
``k`` of them report it failed (``Monitor.regions_confirm``, by default a majority:
``n // 2 + 1``), and *passed* when ``n - k + 1`` report success, so that ``k``
failures can no longer come. Until one of the two is reached the slot has no verdict
and moves nothing: a region that did not answer (its workers gone, its message
expired, its results late) is unknown, never a failure. Once reached, a verdict is
final, since both at once would need more answers than regions: a region's result
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

import dataclasses
import hmac
from collections.abc import Sequence

import orjson
from django.conf import settings
from django.utils.crypto import salted_hmac

from telemetry.records import CheckResult

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
    results: Sequence[CheckResult], *, regions: int, quorum: int
) -> CheckResult | None:
    """The verdict of one slot from its regions' ``results`` (one per region), or None
    while it has none (see the module docstring).

    A failed verdict is the first failed result in region order, its ``region`` the
    failed regions joined by commas; a passed one the first passed result, its
    ``duration_ms`` the median of the passed ones."""
    if regions <= 1 and len(results) == 1:
        return results[0]
    ordered = sorted(results, key=lambda r: r.region)
    failed = [r for r in ordered if not r.ok]
    passed = [r for r in ordered if r.ok]
    if len(failed) >= quorum:
        return dataclasses.replace(failed[0], region=",".join(r.region for r in failed))
    if len(passed) >= regions - quorum + 1:
        durations = sorted(r.duration_ms for r in passed)
        return dataclasses.replace(
            passed[0],
            duration_ms=durations[len(durations) // 2],
            region=",".join(r.region for r in passed),
        )
    return None
