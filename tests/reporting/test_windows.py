"""reporting.windows: a window (since, until] split into raw edges, whole hours and
whole days that cover it exactly, once."""

from __future__ import annotations

import datetime as dt
import itertools
import random

import pytest

from reporting.windows import Span, spans_sql, window_plan

HOUR, DAY = dt.timedelta(hours=1), dt.timedelta(days=1)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=dt.UTC)


def pieces(since: dt.datetime, until: dt.datetime) -> list[tuple[str, Span]]:
    plan = window_plan(since, until)
    found = [("raw", s) for s in plan.raw] + [("hour", s) for s in plan.hours]
    found += [("day", s) for s in plan.days]
    return sorted(found, key=lambda item: item[1].low)


def test_a_24_hour_window_ending_at_17_past_is_two_edges_and_23_hours():
    plan = window_plan(utc(2026, 11, 27, 12, 17), utc(2026, 11, 28, 12, 17))

    assert plan.raw == (
        Span(utc(2026, 11, 27, 12, 17), utc(2026, 11, 27, 13), False, False),
        Span(utc(2026, 11, 28, 12), utc(2026, 11, 28, 12, 17), True, True),
    )
    assert plan.hours == (Span(utc(2026, 11, 27, 13), utc(2026, 11, 28, 12)),)
    assert plan.days == ()


def test_a_7_day_window_is_six_whole_days_with_hours_on_both_sides():
    plan = window_plan(utc(2026, 11, 21, 12, 17), utc(2026, 11, 28, 12, 17))

    assert plan.days == (Span(utc(2026, 11, 22), utc(2026, 11, 28)),)
    assert plan.hours == (
        Span(utc(2026, 11, 21, 13), utc(2026, 11, 22)),
        Span(utc(2026, 11, 28), utc(2026, 11, 28, 12)),
    )


def test_a_window_starting_on_the_hour_does_not_count_the_check_at_its_start():
    plan = window_plan(utc(2026, 11, 27, 12), utc(2026, 11, 28, 12))

    # The hour [12:00, 13:00) holds the check at since, so it is read raw, from after it.
    assert plan.raw[0] == Span(utc(2026, 11, 27, 12), utc(2026, 11, 27, 13), False, False)
    # until itself is inside: the hour that starts at until is a one-instant raw edge.
    assert plan.raw[1] == Span(utc(2026, 11, 28, 12), utc(2026, 11, 28, 12), True, True)


def test_a_window_shorter_than_its_hours_is_read_raw():
    since, until = utc(2026, 11, 28, 11, 40), utc(2026, 11, 28, 12, 50)

    plan = window_plan(since, until)

    assert (plan.raw, plan.hours, plan.days) == ((Span(since, until, False, True),), (), ())


def test_every_window_is_covered_exactly_once():
    rng = random.Random(13)
    for _ in range(2000):
        until = utc(2026, 11, 28) + dt.timedelta(seconds=rng.uniform(-86400 * 60, 0))
        if rng.random() < 0.2:  # on the hour and on midnight too
            until = until.replace(minute=0, second=0, microsecond=0)
        if rng.random() < 0.1:
            until = until.replace(hour=0)
        since = until - rng.choice([dt.timedelta(seconds=rng.uniform(1, 86400 * 40)), HOUR, DAY])

        found = pieces(since, until)

        assert found[0][1].low == since and not found[0][1].low_inclusive
        assert found[-1][1].high == until and found[-1][1].high_inclusive
        for (_, before), (_, after) in itertools.pairwise(found):
            assert before.high == after.low and not before.high_inclusive
            assert after.low_inclusive
        for kind, span in found:
            if kind == "raw":
                # An edge is part of one hour; a window without a whole hour, of two.
                assert span.high - span.low <= (HOUR if len(found) > 1 else 2 * HOUR)
            else:
                unit = HOUR if kind == "hour" else DAY
                assert (span.low.timestamp() % unit.total_seconds(), span.high > span.low) == (
                    0,
                    True,
                )
                assert span.high.timestamp() % unit.total_seconds() == 0
            if kind == "hour":
                assert span.high - span.low < DAY or not any(k == "day" for k, _ in found)


def test_spans_become_one_range_condition_per_span():
    spans = [
        Span(utc(2026, 11, 27, 12, 17), utc(2026, 11, 27, 13), False, False),
        Span(utc(2026, 11, 28, 12), utc(2026, 11, 28, 12, 17), True, True),
    ]

    sql, params = spans_sql(spans, "scheduled_at")

    assert sql == (
        "(scheduled_at > %s AND scheduled_at < %s OR scheduled_at >= %s AND scheduled_at <= %s)"
    )
    assert params[0] == dt.datetime(2026, 11, 27, 12, 17) and params[0].tzinfo is None
    assert spans_sql([], "day") == ("FALSE", [])
    assert spans_sql([Span(utc(2026, 11, 1), utc(2026, 11, 8))], "day", dates=True)[1] == [
        dt.date(2026, 11, 1),
        dt.date(2026, 11, 8),
    ]


def test_a_window_must_end_after_it_starts():
    with pytest.raises(ValueError, match="must end after it starts"):
        window_plan(utc(2026, 11, 28), utc(2026, 11, 28))
