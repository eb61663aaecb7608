"""The outage drills' accounting (benchmarks/chaos.py) and their private services.

The accounting is pure: hand-made slots, results and deliveries. Each way a drill can
go wrong (a slot lost, skipped without a catch-up, checked twice; an alert lost, sent
twice under two ids, repeated without being in doubt) must change a figure, or a
drill reporting 0 would prove nothing.
"""

from __future__ import annotations

import redis

from benchmarks._private_services import MACHINE_PORTS, answers, private_services
from benchmarks.chaos import (
    Arrival,
    Outage,
    account_alerts,
    drill_windows,
    expected_alerts,
    expected_slots,
    explain_missing,
    log_counts,
    outage_slots,
    stream_duplicates,
    traceback_errors,
)
from monitors.dispatch import monitor_phase_ms

INTERVAL_S = 30
PERIOD = INTERVAL_S * 1000
T0 = 1_800_000_000_000  # epoch ms, a multiple of the period


def grid(monitor_id: int, k: int) -> int:
    """The k-th slot of ``monitor_id`` after T0."""
    return T0 + monitor_phase_ms(monitor_id=monitor_id, interval_seconds=INTERVAL_S) + k * PERIOD


# --- expected slots ------------------------------------------------------------------


def test_it_expects_every_phase_aligned_slot_of_each_monitor_in_the_window() -> None:
    slots = expected_slots(
        monitor_ids=[1, 2], interval_s=INTERVAL_S, start_ms=T0, end_ms=T0 + 90_000
    )

    assert slots == {(m, grid(m, k)) for m in (1, 2) for k in range(3)}


def test_it_leaves_out_a_slot_at_the_end_of_the_window_and_keeps_one_at_its_start() -> None:
    start = grid(7, 1)

    slots = expected_slots(
        monitor_ids=[7], interval_s=INTERVAL_S, start_ms=start, end_ms=grid(7, 3)
    )

    assert sorted(s for _, s in slots) == [grid(7, 1), grid(7, 2)]


def test_it_gives_each_drill_the_time_from_its_fault_to_the_next_fault() -> None:
    warm, first, second, third, end = ((t, {"beat": t}) for t in (0, 10, 20, 30, 40))

    windows = drill_windows([warm, first, second, third, end])

    # The first from the warm-up; the last to the end of the run.
    assert windows == [(warm, second), (second, third), (third, end)]


# --- missing slots: lost or skipped by design -------------------------------------------


def test_it_counts_a_missing_slot_as_lost_when_nothing_was_away_by_design() -> None:
    missing = {(1, grid(1, 2))}

    verdict = explain_missing(
        missing, stored_by_monitor={1: [grid(1, 3)]}, away=None, interval_ms=PERIOD
    )

    assert verdict.lost == missing
    assert verdict.skipped_by_design == set()


def test_it_explains_a_slot_due_while_beat_was_away_when_the_monitor_was_caught_up() -> None:
    away = (grid(1, 1) - 1000, grid(1, 1) + 10_000)
    missing = {(1, grid(1, 1)), (1, grid(1, 2))}

    verdict = explain_missing(
        missing, stored_by_monitor={1: [grid(1, 0), grid(1, 4)]}, away=away, interval_ms=PERIOD
    )

    assert verdict.skipped_by_design == missing
    assert verdict.lost == set()


def test_it_counts_a_skipped_slot_as_lost_when_no_catch_up_followed() -> None:
    away = (grid(1, 1) - 1000, grid(1, 1) + 10_000)
    missing = {(1, grid(1, 1))}

    # The only later result lies far beyond the catch-up bound.
    verdict = explain_missing(
        missing, stored_by_monitor={1: [grid(1, 20)]}, away=away, interval_ms=PERIOD
    )

    assert verdict.lost == missing


def test_it_counts_a_slot_outside_the_time_away_as_lost_even_in_a_beat_drill() -> None:
    away = (grid(1, 5), grid(1, 5) + 10_000)
    missing = {(1, grid(1, 1))}  # due well before Beat went away

    verdict = explain_missing(
        missing, stored_by_monitor={1: [grid(1, 2), grid(1, 6)]}, away=away, interval_ms=PERIOD
    )

    assert verdict.lost == missing


# --- duplicates on the stream ------------------------------------------------------------


def test_it_tells_a_slot_checked_twice_from_one_result_pushed_twice() -> None:
    a, b, c = (1, grid(1, 0)), (2, grid(2, 0)), (3, grid(3, 0))
    streamed = [
        (*a, a[1] + 10), (*a, a[1] + 10),  # pushed twice (a spool replay)
        (*b, b[1] + 10), (*b, b[1] + 40_000),  # checked twice (a redelivered batch)
        (*c, c[1] + 10),
    ]  # fmt: skip

    duplicates = stream_duplicates(streamed, slots={a, b, c})

    assert (duplicates.copies, duplicates.checked_twice) == (2, 1)


def test_it_ignores_copies_of_slots_outside_the_window() -> None:
    a = (1, grid(1, 0))

    duplicates = stream_duplicates([(*a, 1), (*a, 2)], slots=set())

    assert duplicates.copies == 0


# --- alerts ---------------------------------------------------------------------------------


def outage(monitor_id: int = 1) -> Outage:
    start = grid(monitor_id, 0) - 2000
    return Outage(monitor_id, start, start + 80_000)


def test_it_expects_a_down_and_an_up_alert_for_an_outage_of_three_checked_slots() -> None:
    assert outage_slots(outage(), interval_s=INTERVAL_S) == [grid(1, k) for k in range(3)]

    assert expected_alerts([outage()], skipped=set(), interval_s=INTERVAL_S) == {
        (1, "down"),
        (1, "up"),
    }


def test_it_expects_no_alert_when_the_skipped_slots_leave_fewer_failures_than_confirm() -> None:
    skipped = {(1, grid(1, 0)), (1, grid(1, 1))}

    assert expected_alerts([outage()], skipped=skipped, interval_s=INTERVAL_S) == set()


def arrival(delivery: str, event: str = "down", monitor_id: int = 1) -> Arrival:
    return Arrival(delivery, event, monitor_id, 0.0)


EXPECTED = {(1, "down"), (1, "up")}


def test_it_counts_an_alert_that_never_arrived_as_lost() -> None:
    verdict = account_alerts(
        expected=EXPECTED, arrivals=[arrival("10")], monitors={1}, in_doubt=set()
    )

    assert (verdict.expected, verdict.sent, verdict.lost) == (2, 1, 1)


def test_it_splits_repeats_into_those_in_doubt_and_the_others() -> None:
    arrivals = [
        arrival("10"), arrival("10"),  # re-sent after a worker died mid-send: in doubt
        arrival("11", "up"), arrival("11", "up"),  # the same id again, not in doubt
        arrival("12", "up"),  # a second delivery id for the same event
    ]  # fmt: skip

    verdict = account_alerts(expected=EXPECTED, arrivals=arrivals, monitors={1}, in_doubt={"10"})

    assert (verdict.sent, verdict.lost) == (2, 0)
    assert verdict.duplicated_in_doubt == 1
    assert verdict.duplicated == 2


def test_it_counts_alerts_of_a_monitor_without_its_outage_as_unexpected() -> None:
    arrivals = [arrival("20", "down", 2), arrival("21", "reminder", 1)]

    verdict = account_alerts(expected=EXPECTED, arrivals=arrivals, monitors={1, 2}, in_doubt=set())

    assert verdict.unexpected == 1
    assert verdict.lost == 2


def test_it_counts_traceback_headers_and_unreachable_lines() -> None:
    text = (
        "[12:00] MySQL is unreachable at mysql://root:***@127.0.0.1:1/x (refused); retrying\n"
        "Traceback (most recent call last):\n  File 'x.py'\nOSError: boom\n"
        "During handling...\nTraceback (most recent call last):\nValueError\n"
    )

    assert log_counts(text) == (2, 1)
    assert traceback_errors(text) == {"OSError: boom": 1, "ValueError": 1}


# --- the private services ----------------------------------------------------------------


def test_it_starts_a_private_redis_on_a_free_port_and_stops_it() -> None:
    with private_services(("redis",)) as services:
        service = services["redis"]
        client = redis.Redis(host="127.0.0.1", port=service.port)
        client.set("chaos", "1")

        assert service.port not in MACHINE_PORTS
        assert client.get("chaos") == b"1"
        service.kill()
        service.start()  # from its append-only file
        assert client.get("chaos") == b"1"
        client.close()

    assert not answers(service.port)
