"""A dispatch that could not run is a pause, not a loss: the failed dispatch is tried
again, and the slots missed meanwhile are caught up, each once, without a burst."""

from __future__ import annotations

import datetime as dt
import itertools
import logging
from collections import Counter

import pytest
from django.utils import timezone

from core.time import from_epoch_ms as from_ms
from core.time import to_epoch_ms as to_ms
from monitors import tasks
from monitors.dispatch import align_up, dispatch_due, monitor_phase_ms
from monitors.models import Monitor
from tests.monitors.test_dispatch import Collect, make_monitors, minute_start
from tests.outages import mysql_away

MINUTE = dt.timedelta(minutes=1)


def behind_by(ids, *, seconds, interval_seconds, now):
    """Put each monitor's next slot on its own phase, ``seconds`` behind ``now``: the
    state a dispatcher that could not run for that long leaves."""
    slots = {}
    for pk in ids:
        phase = monitor_phase_ms(monitor_id=pk, interval_seconds=interval_seconds)
        slot = align_up(
            to_ms(now) - seconds * 1000, period_ms=interval_seconds * 1000, phase_ms=phase
        )
        Monitor.objects.filter(pk=pk).update(next_check_at=from_ms(slot))
        slots[pk] = slot
    return slots


def dispatch_minutes(now, minutes):
    """Dispatch at ``now`` and each minute after it; every slot handed out."""
    sent = []
    for minute in range(minutes):
        collect = Collect()
        dispatch_due(now=now + minute * MINUTE, publish=collect)
        sent.extend(collect.slots)
    return sent


@pytest.mark.django_db
def test_it_hands_out_every_slot_missed_while_it_could_not_dispatch_once():
    now = minute_start() + 2 * MINUTE
    ids = make_monitors(50, next_check_at=now, interval_seconds=30)
    first = behind_by(ids, seconds=90, interval_seconds=30, now=now)

    sent = dispatch_minutes(now, 3)

    for pk in ids:
        mine = sorted((s for s in sent if s.monitor_id == pk), key=lambda s: s.scheduled_ms)
        labels = [s.scheduled_ms for s in mine]
        # Every slot from the first one missed onwards, each once, none skipped.
        assert labels == [first[pk] + n * 30_000 for n in range(len(labels))]
        missed = [s for s in mine if s.scheduled_ms < to_ms(now) - 5_000]
        assert len(missed) == len(range(first[pk], to_ms(now) - 5_000, 30_000)) >= 2
        assert all(s.starts_ms is not None for s in missed)
        on_time = mine[len(missed) :]
        assert all(s.starts_ms is None for s in on_time)
        # The missed ones start within the next minute, an interval apart, each after its
        # own slot and half an interval from the slots on time: between them, not on them.
        starts = [s.starts_at_ms for s in missed]
        assert to_ms(now) <= starts[0] < to_ms(now + MINUTE)
        assert {b - a for a, b in itertools.pairwise(starts)} == {30_000}
        assert all(s.starts_at_ms > s.scheduled_ms for s in missed)
        assert all((start - on_time[0].scheduled_ms) % 30_000 == 15_000 for start in starts)


@pytest.mark.django_db
def test_a_catch_up_is_spread_over_the_minute_not_a_burst():
    now = minute_start() + 2 * MINUTE
    ids = make_monitors(600, next_check_at=now, interval_seconds=30)
    behind_by(ids, seconds=70, interval_seconds=30, now=now)
    collect = Collect()

    dispatch_due(now=now, horizon_seconds=60, publish=collect)

    per_second = Counter(s.starts_at_ms // 1000 for s in collect.slots)
    usual = len(ids) / 30  # checks a second on time
    assert len(per_second) >= 55  # every second of the minute has its share
    assert max(per_second.values()) <= 2 * 1.5 * usual  # twice the rhythm, never a burst


@pytest.mark.django_db
def test_slots_older_than_the_catch_up_window_are_skipped(settings):
    settings.SENTINEL_DISPATCH_CATCH_UP_SECONDS = 180
    now = minute_start() + 2 * MINUTE
    [pk] = make_monitors(1, next_check_at=now, interval_seconds=30)
    behind_by([pk], seconds=600, interval_seconds=30, now=now)

    sent = dispatch_minutes(now, 1)

    oldest = min(s.scheduled_ms for s in sent)
    assert to_ms(now) - 180_000 <= oldest < to_ms(now) - 150_000


@pytest.mark.django_db
def test_without_a_catch_up_window_a_monitor_behind_gets_one_slot_at_its_phase(settings):
    settings.SENTINEL_DISPATCH_CATCH_UP_SECONDS = 0
    now = minute_start() + 2 * MINUTE
    [pk] = make_monitors(1, next_check_at=now)
    behind_by([pk], seconds=180, interval_seconds=60, now=now)
    collect = Collect()

    dispatch_due(now=now, horizon_seconds=60, publish=collect)

    [slot] = collect.slots
    assert slot.scheduled_ms == to_ms(now) + monitor_phase_ms(monitor_id=pk, interval_seconds=60)
    assert slot.starts_ms is None


@pytest.mark.django_db
def test_a_caught_up_batch_is_sent_for_the_second_it_runs_in(probes_queue):
    now = timezone.now()
    [pk] = make_monitors(1, next_check_at=now, interval_seconds=30)
    behind_by([pk], seconds=60, interval_seconds=30, now=now)

    report = dispatch_due(now=now, batch_size=1)

    messages = {m.payload[0][0][0][1]: m for m in probes_queue()}
    for slot in report.slots:
        headers = messages[slot.scheduled_ms].headers
        starts = from_ms(slot.starts_at_ms // 1000 * 1000)
        assert headers["eta"] is None or dt.datetime.fromisoformat(headers["eta"]) == starts
        assert dt.datetime.fromisoformat(headers["expires"]) >= starts


def run_dispatch(*, attempt=0, expires_in=50):
    """Run the dispatch task here as a worker runs a message that expires in
    ``expires_in`` seconds (Beat sends the dispatch with a 50 s expiry)."""
    task = tasks.dispatch_due_task
    expires = timezone.now() + dt.timedelta(seconds=expires_in)
    # The request a worker builds from the message (the stubs type no fields of it).
    task.push_request(id=f"dispatch-{attempt}", expires=expires.isoformat())  # type: ignore[call-arg]
    try:
        task.run(attempt=attempt)
    finally:
        task.pop_request()
    return expires


@pytest.mark.django_db(transaction=True)  # the claim commits; MySQL goes away in between
def test_a_dispatch_that_meets_mysql_away_is_tried_again_and_says_so_once(
    dispatch_queue, database_away, caplog
):
    sent_at, expiries = [], []
    with caplog.at_level(logging.DEBUG, logger="monitors.tasks"):
        for attempt in range(3):
            sent_at.append(timezone.now())
            expiries.append(run_dispatch(attempt=attempt))

    retries = dispatch_queue()
    assert [m.payload[1] for m in retries] == [{"attempt": 1}, {"attempt": 2}, {"attempt": 3}]
    waits = [
        (dt.datetime.fromisoformat(m.headers["eta"]) - at).total_seconds()
        for m, at in zip(retries, sent_at, strict=True)
    ]
    assert [int(wait) for wait in waits] == [1, 2, 4]  # the backoff
    said = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(said) == 1 and said[0].getMessage().startswith("MySQL is unreachable at mysql://")
    assert "tried again and catches up" in said[0].getMessage()
    assert "Traceback" not in caplog.text
    # Each try ends when the dispatch it stands for does.
    assert [dt.datetime.fromisoformat(m.headers["expires"]) for m in retries] == expiries


@pytest.mark.django_db(transaction=True)
def test_a_dispatch_past_its_expiry_leaves_it_to_the_next_minute(dispatch_queue, database_away):
    run_dispatch(attempt=4, expires_in=5)  # its next wait, 15 s, ends past its expiry

    assert dispatch_queue() == []


@pytest.mark.django_db(transaction=True)
def test_the_dispatch_after_mysql_is_back_says_so_and_catches_up(
    dispatch_queue, caplog, monkeypatch
):
    now = timezone.now()
    ids = make_monitors(3, next_check_at=now, interval_seconds=30)
    missed = behind_by(ids, seconds=60, interval_seconds=30, now=now)
    sent = Collect()
    monkeypatch.setattr(
        tasks, "dispatch_due", lambda: dispatch_due(now=timezone.now(), publish=sent)
    )
    with caplog.at_level(logging.INFO, logger="monitors.tasks"):
        with mysql_away():
            run_dispatch()
        run_dispatch(attempt=1)

    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and lines[1].endswith("is back; " + tasks.DISPATCH_RESUMES)
    for pk in ids:
        assert missed[pk] in {s.scheduled_ms for s in sent.slots if s.monitor_id == pk}
