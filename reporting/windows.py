"""How a reporting window of exact length is read: rollups inside, raw rows at the edges.

A window ``(since, until]`` ("the last 24 hours" is ``(now - 24 h, now]``) rarely starts
or ends on an hour. Its whole UTC days come from ``check_rollup_daily``, its other
whole hours from ``check_rollup_hourly``, and the partial hours at its two edges from
the raw ``check_result`` rows, so it counts exactly the checks scheduled inside it:
never the 25th hour of a "24 h" or the 8th day of a "7 d".

::

    since                                                                     until
      | raw | hours ...      | days ...                         | hours ...  | raw |
            ^ first_hour      ^ first_day              last_day ^  last_hour ^

At most two raw edges of under an hour each (a day's partition each), at most 23 + 23
hourly rows and one range of days: a 30-day window is about 75 rollup rows and two
hours of raw rows, whatever the history behind it. Pure time arithmetic; the SQL is in
``reporting.queries``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from core.time import naive_utc

HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Span:
    """A time range of one table: ``[low, high)`` unless the flags say otherwise (the
    raw edges are ``(since, ...)`` and ``[..., until]``). Aware UTC datetimes; a day
    range has both ends at midnight."""

    low: dt.datetime
    high: dt.datetime
    low_inclusive: bool = True
    high_inclusive: bool = False

    def sql(self, column: str, *, dates: bool = False) -> tuple[str, list[Any]]:
        """``column`` inside this span as SQL and its parameters (naive UTC datetimes,
        or dates for a DATE column)."""
        low = ">=" if self.low_inclusive else ">"
        high = "<=" if self.high_inclusive else "<"
        params: list[Any] = [naive_utc(self.low), naive_utc(self.high)]
        if dates:
            params = [value.date() for value in params]
        return f"{column} {low} %s AND {column} {high} %s", params


def spans_sql(spans: Sequence[Span], column: str, *, dates: bool = False) -> tuple[str, list[Any]]:
    """``column`` inside any of ``spans``, parenthesised: one range condition that MySQL
    prunes to the partitions of the spans and reads by primary key. ``FALSE`` for none."""
    if not spans:
        return "FALSE", []
    parts, params = [], []
    for span in spans:
        sql, values = span.sql(column, dates=dates)
        parts.append(sql)
        params += values
    return "(" + " OR ".join(parts) + ")", params


@dataclass(frozen=True, slots=True)
class WindowPlan:
    """Which rows of which table make up the window ``(since, until]``.

    ``raw``: the partial hours at the edges, from ``check_result`` by ``scheduled_at``;
    ``hours``: whole hours, from ``check_rollup_hourly`` by ``hour_start``; ``days``:
    whole UTC days, from ``check_rollup_daily`` by ``day``. The spans do not overlap
    and together cover the window exactly."""

    since: dt.datetime
    until: dt.datetime
    raw: tuple[Span, ...]
    hours: tuple[Span, ...]
    days: tuple[Span, ...]


def window_plan(since: dt.datetime, until: dt.datetime) -> WindowPlan:
    """The plan of ``(since, until]`` (aware datetimes, ``since < until``).

    Whole hours are those ``[h, h + 1 h)`` with ``since < h`` and ``h + 1 h <= until``;
    whole days likewise, among the whole hours. A check at exactly ``since`` is
    outside the window, one at exactly ``until`` inside: the hour that starts at
    ``since`` is not whole, and ``until``'s own instant is in the last raw edge.
    """
    since, until = since.astimezone(dt.UTC), until.astimezone(dt.UTC)
    if until <= since:
        raise ValueError(f"a window must end after it starts: {since} to {until}")
    first_hour, last_hour = floor_hour(since) + HOUR, floor_hour(until)
    if first_hour >= last_hour:
        return WindowPlan(since, until, (Span(since, until, False, True),), (), ())
    raw = (Span(since, first_hour, False, False), Span(last_hour, until, True, True))
    first_day, last_day = ceil_day(first_hour), floor_day(last_hour)
    if first_day >= last_day:
        return WindowPlan(since, until, raw, (Span(first_hour, last_hour),), ())
    hours = tuple(
        Span(low, high)
        for low, high in ((first_hour, first_day), (last_day, last_hour))
        if low < high
    )
    return WindowPlan(since, until, raw, hours, (Span(first_day, last_day),))


def floor_hour(moment: dt.datetime) -> dt.datetime:
    """The start of ``moment``'s hour."""
    return moment.replace(minute=0, second=0, microsecond=0)


def floor_day(moment: dt.datetime) -> dt.datetime:
    """The start of ``moment``'s UTC day (``moment`` in UTC)."""
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def ceil_day(moment: dt.datetime) -> dt.datetime:
    """The first midnight at or after ``moment`` (in UTC)."""
    day = floor_day(moment)
    return day if day == moment else day + DAY
