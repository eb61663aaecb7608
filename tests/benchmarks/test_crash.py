"""The crash scenario's check of live state and incidents against a replay of the rows.

Pure: hand-made rows and states, no database. The comparator must see every way the
applied state can be wrong, or a crash scenario reporting 0 would prove nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from benchmarks.crash import Incidents, incidents_from, replay_mismatch
from monitors.state import LiveState, state_replay
from telemetry.records import CheckResult

T0 = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
NEW = LiveState("pending", 0, 0, None)


def at(minute: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minute)


def rows(pattern: str) -> list[CheckResult]:
    """One row a minute, "P" passed and "F" failed."""
    return [
        CheckResult(monitor_id=1, scheduled_at=at(m), started_at=at(m), duration_ms=5, ok=c == "P")
        for m, c in enumerate(pattern)
    ]


# "PFFPFF": up at 0, down at 2 (two in a row), up at 3, down again at 5.
STORED = rows("PFFPFF")
RIGHT_STATE = LiveState("down", 2, 0, at(5), recent_failures=0b11)
RIGHT_INCIDENTS: Incidents = [(at(2), at(3)), (at(5), None)]


def judge(state: LiveState = RIGHT_STATE, incidents: Incidents = RIGHT_INCIDENTS):
    return replay_mismatch(start=NEW, rows=STORED, state=state, incidents=incidents)


def test_it_finds_nothing_wrong_with_the_state_and_incidents_the_rows_give():
    verdict = judge()

    assert (verdict.state_differs, verdict.incidents_differ) == (False, False)
    assert verdict.incidents_replayed == 2


def test_it_finds_nothing_wrong_when_the_rows_come_in_another_order():
    verdict = replay_mismatch(
        start=NEW, rows=STORED[::-1], state=RIGHT_STATE, incidents=RIGHT_INCIDENTS[::-1]
    )

    assert (verdict.state_differs, verdict.incidents_differ) == (False, False)


@pytest.mark.parametrize(
    "wrong",
    [
        {"status": "up"},  # a wrong status
        {"consecutive_failures": 1},  # a wrong streak
        {"consecutive_successes": 1},
        {"last_checked_at": at(4)},  # a late result applied last
        {"recent_failures": 0b1},
    ],
)
def test_it_sees_a_wrong_live_state(wrong):
    verdict = judge(state=dataclasses.replace(RIGHT_STATE, **wrong))

    assert (verdict.state_differs, verdict.incidents_differ) == (True, False)


@pytest.mark.parametrize(
    "incidents",
    [
        [(at(2), at(3))],  # a missing incident
        [(at(2), at(3)), (at(4), at(5)), (at(5), None)],  # an extra incident
        [(at(2), None), (at(5), None)],  # one never ended
        [(at(2), at(3)), (at(4), None)],  # started at the wrong slot
        [],
    ],
)
def test_it_sees_missing_extra_and_wrong_incidents(incidents):
    verdict = judge(incidents=incidents)

    assert (verdict.state_differs, verdict.incidents_differ) == (False, True)


def test_a_monitor_without_rows_must_still_be_new():
    verdict = replay_mismatch(start=NEW, rows=[], state=RIGHT_STATE, incidents=[])

    assert verdict.state_differs is True
    assert replay_mismatch(start=NEW, rows=[], state=NEW, incidents=[]).state_differs is False


def test_incidents_open_on_a_change_to_down_and_end_on_the_change_to_up():
    # Down at 1 (two in a row), up at 3, down at 9 (three of the last five).
    _, changes = state_replay(NEW, rows("FFFPPFPFPFF"))

    assert incidents_from(changes) == [(at(1), at(3)), (at(9), None)]
