"""Row locks taken in key order, whatever the size of the key list.

Two transactions that lock overlapping rows never deadlock if both lock in ascending
key order. A single ``WHERE key IN (...) ORDER BY key FOR UPDATE`` does that while
MariaDB reads the list along the index, but from ``in_predicate_conversion_threshold``
values (1,000 by default) it turns the list into a table of values and locks rows in
that table's order instead: a dispatch claim of 1,000 monitors once deadlocked that way
with a probe batch's live-state lock. So lists are locked in ascending chunks below it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from django.db import models

IN_LIST_MAX = 500

Row = TypeVar("Row")


def ascending_chunks(keys: Iterable[int], *, size: int = IN_LIST_MAX) -> Iterator[list[int]]:
    """The distinct ``keys`` in ascending order, ``size`` at a time."""
    ordered = sorted(set(keys))
    for offset in range(0, len(ordered), size):
        yield ordered[offset : offset + size]


def lock_in_key_order(
    queryset: models.QuerySet[Any, Row], field: str, keys: Iterable[int]
) -> list[Row]:
    """The rows of ``queryset`` (models, or ``values_list`` tuples) whose ``field`` is
    one of ``keys``, locked FOR UPDATE in ascending ``field`` order, inside the
    caller's transaction."""
    rows: list[Row] = []
    for chunk in ascending_chunks(keys):
        rows += queryset.select_for_update().filter(**{f"{field}__in": chunk}).order_by(field)
    return rows
