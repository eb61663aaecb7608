"""Time conversions shared by the result path and the read side.

The result tables hold naive UTC ``DATETIME(3)`` values and the connection runs with
``time_zone = '+00:00'``; the buffer's wire rows carry integer epoch milliseconds.
"""

from __future__ import annotations

import datetime as dt


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
