"""The fixed latency buckets of the rollup tables, and percentiles from them.

The bounds are part of the schema (one column per bucket in ``check_rollup_hourly``
and ``check_rollup_daily``): changing them needs a migration. Buckets are not
cumulative; ``le_100ms`` counts durations in (75, 100] ms.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from typing import TypeVar

V = TypeVar("V", int, float)

# Upper bounds (inclusive, ms); a last overflow bucket holds everything above.
BUCKET_BOUNDS_MS: tuple[int, ...] = (
    10, 25, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000, 10000, 30000,
)  # fmt: skip
BUCKET_COLUMNS: tuple[str, ...] = (
    *(f"le_{bound}ms" for bound in BUCKET_BOUNDS_MS),
    f"gt_{BUCKET_BOUNDS_MS[-1]}ms",
)


def bucket_sums_sql() -> str:
    """SQL expressions that count a set of check_result rows into the histogram
    buckets, in BUCKET_COLUMNS order (successful checks only, like the rollups); for
    rebuilding rollups from raw rows in tests and the dashboard benchmark."""
    parts, low = [], None
    for bound in BUCKET_BOUNDS_MS:
        lower = "" if low is None else f" AND duration_ms > {low}"
        parts.append(f"SUM(ok = 1 AND duration_ms <= {bound}{lower})")
        low = bound
    parts.append(f"SUM(ok = 1 AND duration_ms > {low})")
    return ", ".join(parts)


def bucket_index(duration_ms: int) -> int:
    """The index in ``BUCKET_COLUMNS`` of the bucket that counts ``duration_ms``."""
    return bisect_left(BUCKET_BOUNDS_MS, duration_ms)


def percentile_index(count: int, quantile: float) -> int:
    """The 0-based index of the ``quantile`` (0 < q <= 1) among ``count`` sorted values:
    ``floor(q * (count - 1))``, the lower of the two values around the interpolated
    point (Hyndman and Fan's definition 7, rounded down; numpy's ``method="lower"``).

    The one percentile of the product: the dashboard, the API, the rollups and the
    p95 latency rule all use it. It is always a value that was observed, and with two
    or more values never the largest alone, so one slow check in a short window is a
    blip rather than the p95 (nearest rank, ``ceil(q * count)``, would make the p95 of
    any window under 20 checks its slowest check).
    """
    return math.floor(quantile * (count - 1))


def percentile(sorted_values: Sequence[V], quantile: float) -> V | None:
    """The ``quantile`` of ascending ``sorted_values`` (``percentile_index``); None if
    there are none."""
    if not sorted_values:
        return None
    return sorted_values[percentile_index(len(sorted_values), quantile)]


def percentile_ms(counts: Sequence[int], quantile: float) -> int | None:
    """The ``quantile`` (0 < q <= 1) latency from bucket counts, as the upper bound of
    the bucket that holds the value at ``percentile_index`` (the overflow bucket
    answers its lower bound): an upper estimate, exact to the bucket. None when there
    are no counts."""
    if len(counts) != len(BUCKET_COLUMNS):
        raise ValueError(f"expected {len(BUCKET_COLUMNS)} bucket counts, got {len(counts)}")
    if not 0 < quantile <= 1:
        raise ValueError(f"quantile must be in (0, 1], got {quantile}")
    return percentiles_ms(counts, (quantile,))[0]


def percentiles_ms(counts: Sequence[int], quantiles: Sequence[float]) -> tuple[int | None, ...]:
    """``percentile_ms`` of several ``quantiles`` (ascending) in one walk of the bucket
    counts: the 720 hours of a 30-day series each want p50, p95 and p99."""
    total = sum(counts)
    if not total:
        return (None,) * len(quantiles)
    found: list[int | None] = []
    running, index = 0, -1
    for quantile in quantiles:
        wanted = percentile_index(total, quantile)
        while running <= wanted:
            index += 1
            running += counts[index]
        found.append(BUCKET_BOUNDS_MS[min(max(index, 0), len(BUCKET_BOUNDS_MS) - 1)])
    return tuple(found)
