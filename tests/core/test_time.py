"""core.time: wall-clock times in a named zone, on ordinary days and the nights the
clocks change."""

from __future__ import annotations

import datetime as dt

import pytest

from core.time import from_wall_time, time_zone, wall_time, wall_time_kind

BERLIN, NEW_YORK = time_zone("Europe/Berlin"), time_zone("America/New_York")


@pytest.mark.parametrize(
    ("zone", "wall", "kind", "instant"),
    [
        (BERLIN, dt.datetime(2026, 7, 5, 2), "real", dt.datetime(2026, 7, 5, 0, tzinfo=dt.UTC)),
        # The clocks go from 02:00 to 03:00: 02:30 is read as 03:30 CEST.
        (
            BERLIN,
            dt.datetime(2026, 3, 29, 2, 30),
            "skipped",
            dt.datetime(2026, 3, 29, 1, 30, tzinfo=dt.UTC),
        ),
        # The clocks go from 03:00 back to 02:00: 02:30 is first 02:30 CEST.
        (
            BERLIN,
            dt.datetime(2026, 10, 25, 2, 30),
            "ambiguous",
            dt.datetime(2026, 10, 25, 0, 30, tzinfo=dt.UTC),
        ),
        (
            NEW_YORK,
            dt.datetime(2026, 3, 8, 2, 30),
            "skipped",
            dt.datetime(2026, 3, 8, 7, 30, tzinfo=dt.UTC),
        ),
        (
            NEW_YORK,
            dt.datetime(2026, 11, 1, 1, 30),
            "ambiguous",
            dt.datetime(2026, 11, 1, 5, 30, tzinfo=dt.UTC),
        ),
    ],
)
def test_a_wall_time_is_real_skipped_or_ambiguous_and_read_as_rfc_5545_reads_it(
    zone, wall, kind, instant
):
    assert wall_time_kind(wall, zone) == kind
    assert from_wall_time(wall, zone) == instant
    if kind != "skipped":
        assert wall_time(instant, zone) == wall


@pytest.mark.parametrize("name", ["Europe/Atlantis", "", "../etc/passwd", "utc"])
def test_an_unknown_zone_is_a_value_error_naming_it(name):
    with pytest.raises(ValueError, match="is not a time zone"):
        time_zone(name)
