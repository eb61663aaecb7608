"""Time conversions shared by the result path, the read side and alerting.

The result tables hold naive UTC ``DATETIME(3)`` values and the connection runs with
``time_zone = '+00:00'``; the buffer's wire rows carry integer epoch milliseconds.
Maintenance windows repeat at a wall-clock time in an IANA zone (``zoneinfo``).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WallTimeKind = Literal["real", "ambiguous", "skipped"]


def to_epoch_ms(moment: dt.datetime) -> int:
    """Milliseconds since the Unix epoch (an aware datetime, or naive local time as
    ``datetime.timestamp`` reads it)."""
    return round(moment.timestamp() * 1000)


def from_epoch_ms(value: int) -> dt.datetime:
    """The aware UTC datetime of ``value`` epoch milliseconds."""
    return dt.datetime.fromtimestamp(value / 1000, tz=dt.UTC)


def as_utc(moment: dt.datetime) -> dt.datetime:
    """``moment`` as an aware datetime: a naive one is taken as UTC (what raw cursors
    return under ``USE_TZ``), an aware one is returned unchanged."""
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment


def naive_utc(moment: dt.datetime) -> dt.datetime:
    """``moment`` as naive UTC, the form the result tables compare against."""
    return moment.astimezone(dt.UTC).replace(tzinfo=None) if moment.tzinfo else moment


def time_zone(name: str) -> ZoneInfo:
    """The IANA zone ``name`` (e.g. ``Europe/Berlin``, ``UTC``).

    Raises ``ValueError`` naming it when the zone database has no such zone."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(
            f"{name!r} is not a time zone; use an IANA name such as Europe/Berlin or UTC."
        ) from None


def wall_time(moment: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """The naive wall-clock time an aware ``moment`` shows in ``zone``."""
    return moment.astimezone(zone).replace(tzinfo=None)


def wall_time_kind(wall: dt.datetime, zone: ZoneInfo) -> WallTimeKind:
    """Whether naive ``wall`` happens once in ``zone`` (``"real"``), twice because the
    clocks go back over it (``"ambiguous"``), or never because they jump over it
    (``"skipped"``)."""
    first, second = wall.replace(tzinfo=zone, fold=0), wall.replace(tzinfo=zone, fold=1)
    # Through UTC: astimezone() to the zone a datetime is already in changes nothing.
    if wall_time(first.astimezone(dt.UTC), zone) != wall:
        return "skipped"
    return "real" if first.utcoffset() == second.utcoffset() else "ambiguous"


def from_wall_time(wall: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """The aware UTC instant at which ``zone``'s clocks show naive ``wall``.

    An ambiguous time is its first occurrence (``fold=0``, still on summer time); a
    skipped one is read with the offset before the jump, i.e. moved forward by the
    gap (02:30 on the night the clocks go from 02:00 to 03:00 is 03:30), as RFC 5545
    (iCalendar) reads both."""
    return wall.replace(tzinfo=zone, fold=0).astimezone(dt.UTC)
