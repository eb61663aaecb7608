"""Maintenance windows in their own time zone: weekly repeats keep their wall-clock
time across daylight saving changes, and the nights the clocks change are defined.

All the windows here are weekly. Berlin's clocks go forward on 2026-03-29 (02:00 CET
becomes 03:00 CEST) and back on 2026-10-25 (03:00 CEST becomes 02:00 CET); New York's
on 2026-03-08 and 2026-11-01, at 02:00 local time.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from alerting.models import MaintenanceWindow

BERLIN, NEW_YORK = "Europe/Berlin", "America/New_York"
MINUTE, HOUR, WEEK = dt.timedelta(minutes=1), dt.timedelta(hours=1), dt.timedelta(days=7)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=dt.UTC)


def weekly(zone: str, first: dt.datetime, length: dt.timedelta = HOUR, **fields):
    """A weekly window whose first occurrence is ``first`` (UTC) for ``length``."""
    return MaintenanceWindow(
        name="Backups",
        time_zone=zone,
        starts_at=first,
        ends_at=first + length,
        repeat=MaintenanceWindow.Repeat.WEEKLY,
        **fields,
    )


def active(window: MaintenanceWindow, *moments: dt.datetime) -> list[bool]:
    return [window.is_active(moment) for moment in moments]


@pytest.mark.parametrize(
    ("zone", "january", "july"),
    [
        # Sunday 02:00-03:00 local: 01:00 UTC in winter (CET), 00:00 UTC in summer (CEST).
        (BERLIN, utc(2026, 1, 4, 1), utc(2026, 7, 5, 0)),
        # Sunday 02:00-03:00 local: 07:00 UTC in winter (EST), 06:00 UTC in summer (EDT).
        (NEW_YORK, utc(2026, 1, 4, 7), utc(2026, 7, 5, 6)),
    ],
)
def test_a_weekly_window_entered_in_winter_keeps_its_local_hour_in_summer(zone, january, july):
    window = weekly(zone, january)
    winter = january + WEEK

    # A week later, still winter: the same UTC hour.
    assert active(window, winter - MINUTE, winter, winter + 59 * MINUTE) == [False, True, True]
    assert active(window, winter + HOUR) == [False]
    # July: an hour earlier in UTC, the same hour on the local clock; not an hour off.
    assert active(window, july, july + 30 * MINUTE, july + 59 * MINUTE) == [True] * 3
    assert active(window, july - MINUTE, july + HOUR, july + 90 * MINUTE) == [False] * 3
    assert window.next_period(july - 12 * HOUR) == (july, july + HOUR)
    # Back to winter time in November.
    november = january + 47 * WEEK
    assert november.month == 11 and window.next_period(november - HOUR) == (
        november,
        november + HOUR,
    )


def test_a_window_in_utc_repeats_every_168_hours_as_before():
    window = weekly("UTC", utc(2026, 1, 4, 1))

    assert window.next_period(utc(2026, 7, 4)) == (utc(2026, 7, 5, 1), utc(2026, 7, 5, 2))


@pytest.mark.parametrize(
    ("zone", "first", "that_night", "week_after"),
    [
        # 02:30-03:30 CET; on the night of the change 02:30 does not exist: 03:30-04:30
        # CEST (01:30-02:30 UTC); a week later 02:30-03:30 CEST again.
        (BERLIN, utc(2026, 3, 22, 1, 30), utc(2026, 3, 29, 1, 30), utc(2026, 4, 5, 0, 30)),
        # New York: 02:30 EST; on 2026-03-08 03:30 EDT (07:30 UTC), then 02:30 EDT.
        (NEW_YORK, utc(2026, 3, 1, 7, 30), utc(2026, 3, 8, 7, 30), utc(2026, 3, 15, 6, 30)),
    ],
)
def test_a_start_the_clocks_skip_moves_forward_with_them_and_keeps_its_length(
    zone, first, that_night, week_after
):
    window = weekly(zone, first)

    assert window.next_period(first + HOUR) == (that_night, that_night + HOUR)
    assert active(window, that_night - dt.timedelta(minutes=1), that_night) == [False, True]
    assert window.next_period(that_night + HOUR) == (week_after, week_after + HOUR)


def test_the_hour_the_clocks_skip_becomes_the_hour_after_it():
    # Sunday 02:00-03:00 Berlin: on 2026-03-29 the clocks go from 02:00 to 03:00, so
    # the whole window is skipped; it moves to 03:00-04:00 CEST, not to nothing.
    window = weekly(BERLIN, utc(2026, 3, 22, 1))

    assert window.next_period(utc(2026, 3, 28)) == (utc(2026, 3, 29, 1), utc(2026, 3, 29, 2))


def test_an_end_the_clocks_skip_moves_forward_and_a_window_across_the_change_ends_on_the_clock():
    # 01:30-02:30 CET: 02:30 is skipped, read as 03:30 CEST: 00:30-01:30 UTC.
    short = weekly(BERLIN, utc(2026, 3, 22, 0, 30))
    # 01:00-04:00 CET: on the night of the change 01:00 CET to 04:00 CEST, two real hours;
    # on the night they go back 01:00 CEST to 04:00 CET, four.
    across = weekly(BERLIN, utc(2026, 3, 22, 0), 3 * HOUR)

    assert short.next_period(utc(2026, 3, 28)) == (utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 1, 30))
    assert across.next_period(utc(2026, 3, 28)) == (utc(2026, 3, 29, 0), utc(2026, 3, 29, 2))
    assert across.next_period(utc(2026, 10, 24)) == (utc(2026, 10, 24, 23), utc(2026, 10, 25, 3))


def test_an_ambiguous_time_is_its_first_occurrence():
    # 02:15-02:45 CEST, first on 2026-10-18. On 2026-10-25 02:15-02:45 happens twice:
    # the window is the first time (still summer time, 00:15-00:45 UTC) only.
    short = weekly(BERLIN, utc(2026, 10, 18, 0, 15), dt.timedelta(minutes=30))
    # 02:00-03:00: starts at the first 02:00 and ends at 03:00, which comes once, so it
    # covers both passes through the repeated hour (two real hours).
    hour = weekly(BERLIN, utc(2026, 10, 18, 0))

    first_pass, second_pass = utc(2026, 10, 25, 0, 15), utc(2026, 10, 25, 1, 15)
    assert short.next_period(utc(2026, 10, 24)) == (first_pass, first_pass + 30 * MINUTE)
    assert active(short, first_pass, second_pass) == [True, False]
    assert short.next_period(second_pass) == (utc(2026, 11, 1, 1, 15), utc(2026, 11, 1, 1, 45))
    assert hour.next_period(utc(2026, 10, 24)) == (utc(2026, 10, 25, 0), utc(2026, 10, 25, 2))


def test_a_window_across_midnight_keeps_both_ends_on_the_clock():
    # Sunday 23:00 to Monday 01:00 Berlin, entered in January (22:00-00:00 UTC).
    window = weekly(BERLIN, utc(2026, 1, 4, 22), 2 * HOUR)
    # Saturday 23:00 CET to Sunday 03:30 across the night the clocks go forward:
    # 22:00 UTC to 01:30 UTC, three and a half real hours.
    night = weekly(BERLIN, utc(2026, 3, 21, 22), dt.timedelta(hours=4, minutes=30))

    july = utc(2026, 7, 5, 21)  # Sunday 23:00 CEST
    assert window.next_period(utc(2026, 7, 5)) == (july, july + 2 * HOUR)
    assert active(window, july + 90 * MINUTE, july + 2 * HOUR) == [True, False]
    assert night.next_period(utc(2026, 3, 28)) == (utc(2026, 3, 28, 22), utc(2026, 3, 29, 1, 30))


def test_repeat_until_stops_the_repeats_and_cuts_the_last_one_short():
    # Sunday 02:00-03:00 Berlin until 2026-07-05 02:30 CEST (00:30 UTC).
    window = weekly(BERLIN, utc(2026, 1, 4, 1), repeat_until=utc(2026, 7, 5, 0, 30))
    july = utc(2026, 7, 5)

    assert window.next_period(july - HOUR) == (july, july + 30 * MINUTE)
    assert active(window, july + 10 * MINUTE, july + 40 * MINUTE) == [True, False]
    assert window.next_period(july + 40 * MINUTE) is None
    assert not window.is_active(july + WEEK + 10 * MINUTE)
    # A repeat that would start exactly at repeat_until does not happen.
    window.repeat_until = july
    assert window.next_period(july - HOUR) is None


def test_periods_between_follow_the_clock_across_the_change():
    window = weekly(BERLIN, utc(2026, 3, 15, 1))

    assert window.periods_between(utc(2026, 3, 15), utc(2026, 4, 6)) == [
        (utc(2026, 3, 15, 1), utc(2026, 3, 15, 2)),
        (utc(2026, 3, 22, 1), utc(2026, 3, 22, 2)),
        (utc(2026, 3, 29, 1), utc(2026, 3, 29, 2)),  # 03:00-04:00 CEST: 02:00 is skipped
        (utc(2026, 4, 5, 0), utc(2026, 4, 5, 1)),
    ]


def test_an_unknown_time_zone_is_an_error_on_its_field():
    window = weekly("Europe/Atlantis", utc(2026, 1, 4, 1))

    with pytest.raises(ValidationError) as raised:
        window.clean()

    assert list(raised.value.message_dict) == ["time_zone"]
    assert "not a time zone" in raised.value.message_dict["time_zone"][0]


def test_a_weekly_window_must_be_shorter_than_a_week_on_the_clock_too():
    # 6 days 23.5 hours of real time from Sunday 02:30 CET, but the clocks go forward
    # meanwhile: it ends at 03:00 CEST the next Sunday, a week and half an hour later
    # on the clock, so its repeats would overlap.
    window = weekly(BERLIN, utc(2026, 3, 22, 1, 30), WEEK - 30 * MINUTE)

    with pytest.raises(ValidationError) as raised:
        window.clean()

    assert "shorter than a week" in raised.value.message_dict["ends_at"][0]


def test_a_weekly_window_that_ends_before_it_starts_on_the_clock_is_refused():
    # 02:30 CEST to 02:10 CET: 40 minutes of real time, but 02:10 comes before 02:30.
    window = weekly(BERLIN, utc(2026, 10, 25, 0, 30), 40 * MINUTE)

    with pytest.raises(ValidationError) as raised:
        window.clean()

    assert "ends before it starts" in raised.value.message_dict["ends_at"][0]


def test_a_new_window_starts_with_the_sites_time_zone(settings):
    settings.SENTINEL_TIME_ZONE = NEW_YORK

    assert MaintenanceWindow().time_zone == NEW_YORK
