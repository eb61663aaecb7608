"""When a heartbeat monitor's next ping is due: a period, or a cron expression in a
named time zone, plus a grace time (pure functions, no database).

The semantics are Healthchecks' (healthchecks/healthchecks, ``Check.going_down_after``
and ``get_status``): a heartbeat is *late* from its due time until the grace runs out,
and *down* after. With a period the ping is due one period after the last one; with a
cron expression, at the expression's first fire time after the last ping, in the
schedule's time zone. The cron arithmetic is cronsim's (the library Healthchecks uses),
which is DST-correct: a time skipped by a spring-forward gap fires at the gap's end, and
a fall-back hour fires in both of its offsets.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

from cronsim import CronSim, CronSimError

# A cron expression that does not fire within this many years never does (the
# 29th of February fires every 4 years; cronsim itself gives up after 50).
CRON_HORIZON_YEARS = 10


def time_zone(name: str) -> zoneinfo.ZoneInfo:
    """The IANA zone called ``name``; ``ValueError`` naming it when there is none."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        why = f"{name!r} is not a known time zone; use an IANA name such as Europe/Berlin."
        raise ValueError(why) from None


def cron_problem(expression: str, zone: str) -> str | None:
    """Why ``expression`` cannot be a heartbeat schedule (it does not parse, or never
    fires), or None. The zone must be valid (``time_zone``)."""
    start = dt.datetime(2001, 1, 1, tzinfo=time_zone(zone))
    try:
        fires = CronSim(expression, start)
        first = next(fires)
    except CronSimError as exc:
        # cronsim refuses a day that no month of the expression has ("0 0 30 2 *") as
        # a bad field: for the user that is a schedule that never fires either way.
        return f"{expression!r} is not a cron schedule that fires: {exc}."
    except StopIteration:
        first = None
    if first is None or first.year > start.year + CRON_HORIZON_YEARS:
        return f"{expression!r} never fires; check the day of month and the month."
    return None


def heartbeat_due(
    *, last_ping: dt.datetime, period_seconds: int, cron: str, zone: str
) -> dt.datetime:
    """When the ping after ``last_ping`` (aware) is due, in UTC: ``last_ping`` plus
    the period, or the cron expression's first fire time after ``last_ping`` in
    ``zone`` when ``cron`` is set. A cron expression that no longer fires (a schedule
    validated against another calendar) gives a due time far ahead, never an error."""
    if not cron:
        return last_ping + dt.timedelta(seconds=period_seconds)
    local = last_ping.astimezone(time_zone(zone))
    try:
        return next(CronSim(cron, local)).astimezone(dt.UTC)
    except (CronSimError, StopIteration):
        return dt.datetime(9999, 1, 1, tzinfo=dt.UTC)


def heartbeat_deadline(
    *, last_ping: dt.datetime, period_seconds: int, cron: str, zone: str, grace_seconds: int
) -> dt.datetime:
    """When a heartbeat last pinged at ``last_ping`` goes down: its due time plus the
    grace (UTC)."""
    due = heartbeat_due(last_ping=last_ping, period_seconds=period_seconds, cron=cron, zone=zone)
    return due + dt.timedelta(seconds=grace_seconds)
