"""The dispatcher against the real MariaDB (and RabbitMQ for publishing)."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from collections import Counter

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from kombu import Connection

from core.db import IN_LIST_MAX
from core.time import from_epoch_ms as from_ms
from core.time import to_epoch_ms as to_ms
from monitors import dispatch
from monitors.dispatch import Slot, dispatch_due, monitor_phase_ms
from monitors.models import Monitor
from monitors.slots import message_decode
from tests.factories import MonitorFactory, UserFactory
from tests.telemetry.conftest import session_status

MINUTE = dt.timedelta(minutes=1)


def minute_start() -> dt.datetime:
    return timezone.now().replace(second=0, microsecond=0)


def make_monitors(count, *, next_check_at, interval_seconds=60, **fields):
    owner = UserFactory()
    Monitor.objects.bulk_create(
        Monitor(
            owner=owner,
            project_id=owner.personal_project.pk,
            name=f"m{n}",
            url=f"http://127.0.0.1:9/{n}",
            interval_seconds=interval_seconds,
            next_check_at=next_check_at,
            **fields,
        )
        for n in range(count)
    )
    return list(Monitor.objects.order_by("pk").values_list("pk", flat=True))


class Collect:
    """A publisher that keeps the slots instead of sending them."""

    def __init__(self):
        self.slots: list[Slot] = []
        self.lock = threading.Lock()

    def __call__(self, slots):
        with self.lock:
            self.slots.extend(slots)


def busiest_second_over_mean(slots, *, seconds=60):
    per_second = Counter(slot.scheduled_ms // 1000 for slot in slots)
    return max(per_second.values()) / (len(slots) / seconds)


def test_phases_are_stable_and_spread_evenly_over_the_interval():
    for first_id in (1, 48_211):
        ids = range(first_id, first_id + 6000)
        per_second = Counter(
            monitor_phase_ms(monitor_id=i, interval_seconds=60) // 1000 for i in ids
        )
        assert len(per_second) == 60
        assert max(per_second.values()) <= 1.5 * 100
    assert monitor_phase_ms(monitor_id=7, interval_seconds=60) == monitor_phase_ms(
        monitor_id=7, interval_seconds=60
    )


@pytest.mark.django_db
def test_a_monitor_due_exactly_at_the_horizon_does_not_stall_the_dispatch():
    import signal

    # A clock with microseconds, and a monitor whose next slot is the horizon's
    # millisecond: it used to be claimed, "realigned" to the same place, and claimed
    # again, for ever.
    now = minute_start() + dt.timedelta(microseconds=123_456)
    [pk] = make_monitors(1, next_check_at=from_ms(to_ms(now) + 60_000))

    def stalled(signum, frame):
        raise AssertionError("dispatch_due did not return")

    previous = signal.signal(signal.SIGALRM, stalled)
    signal.alarm(10)
    try:
        report = dispatch_due(now=now, horizon_seconds=60, publish=Collect())
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)

    assert report.claimed == 0 and report.realigned == 0  # the next dispatch's slot
    assert Monitor.objects.get(pk=pk).next_check_at == from_ms(to_ms(now) + 60_000)


@pytest.mark.django_db
def test_it_claims_each_due_slot_once_and_schedules_the_next_on_its_phase():
    now = minute_start()
    [pk] = make_monitors(1, next_check_at=now - MINUTE * 3)
    collect = Collect()

    # A 60 s horizon holds one slot whatever the id: with 70 s, an id whose phase falls
    # in the first 10 s of the minute rightly gets two (the test failed on such ids).
    report = dispatch_due(now=now, horizon_seconds=60, publish=collect)
    again = dispatch_due(now=now, horizon_seconds=60, publish=collect)  # a retried task

    [slot] = collect.slots
    assert report.claimed == 1 and again.claimed == 0
    phase = monitor_phase_ms(monitor_id=pk, interval_seconds=60)
    assert slot.scheduled_ms == to_ms(now) + phase
    assert Monitor.objects.get(pk=pk).next_check_at == from_ms(slot.scheduled_ms + 60_000)


@pytest.mark.django_db
def test_it_does_not_dispatch_a_paused_monitor():
    now = minute_start()
    MonitorFactory(enabled=False, status=Monitor.Status.PAUSED, next_check_at=now - MINUTE)
    collect = Collect()

    assert dispatch_due(now=now, publish=collect).claimed == 0
    assert collect.slots == []


@pytest.mark.django_db
def test_monitors_due_off_their_phase_get_one_slot_each_spread_over_the_next_minute():
    now = minute_start()
    # Due three minutes ago at a time that is no slot of theirs (a bulk import, resumed
    # monitors): one slot each, not one per minute missed (missed slots of their own
    # are caught up: test_dispatch_outage.py).
    ids = make_monitors(1200, next_check_at=now - MINUTE * 3)
    first, second = Collect(), Collect()

    dispatch_due(now=now, horizon_seconds=60, publish=first)
    dispatch_due(now=now + MINUTE, horizon_seconds=60, publish=second)

    assert sorted(s.monitor_id for s in first.slots) == ids  # each once, not once per missed slot
    assert all(to_ms(now) <= s.scheduled_ms < to_ms(now + MINUTE) for s in first.slots)
    assert busiest_second_over_mean(first.slots) <= 1.5
    # and the next minute goes on at the same phase, once each
    assert sorted(s.monitor_id for s in second.slots) == ids
    after = {s.monitor_id: s.scheduled_ms for s in second.slots}
    assert all(after[s.monitor_id] == s.scheduled_ms + 60_000 for s in first.slots)


class CollectCalls(Collect):
    """Also keeps each publish call's slots apart, as the broker would see them."""

    def __init__(self):
        super().__init__()
        self.calls: list[list[Slot]] = []

    def __call__(self, slots):
        super().__call__(slots)
        self.calls.append(list(slots))


@pytest.mark.django_db
def test_a_cold_start_sends_full_batches_not_one_per_second_per_chunk(monkeypatch):
    # Every monitor overdue at once (a bulk import, an outage): chunks come in id order,
    # each spread over the whole minute. Seconds ahead are held and merged across chunks.
    monkeypatch.setattr(dispatch, "CLAIM_CHUNK", 200)
    now = minute_start() + 2 * MINUTE  # every slot well ahead of the wall clock
    ids = make_monitors(1200, next_check_at=now - 3 * MINUTE)
    collect = CollectCalls()

    dispatch_due(now=now, horizon_seconds=60, batch_size=10, publish=collect)

    assert sorted(s.monitor_id for s in collect.slots) == ids
    sent = [b for call in collect.calls for b in dispatch.slot_batches(call, batch_size=10)]
    # As few batches as if the minute had been claimed in one piece (~20 slots a second:
    # two or three batches a second), where chunk by chunk made one per second per chunk (~360).
    assert len(sent) == len(dispatch.slot_batches(collect.slots, batch_size=10)) <= 150
    assert len(collect.calls) > 1  # full batches still went out before the last chunk


@pytest.mark.django_db
def test_a_cold_start_is_claimed_in_slot_order_so_early_slots_go_out_first(monkeypatch):
    monkeypatch.setattr(dispatch, "CLAIM_CHUNK", 200)
    now = minute_start() + 2 * MINUTE
    make_monitors(1200, next_check_at=now - 3 * MINUTE)
    claimed: list[list[Slot]] = []
    claim = dispatch.monitors_claim

    def spy(**kwargs):
        slots, realigned = claim(**kwargs)
        claimed.append(slots)
        return slots, realigned

    monkeypatch.setattr(dispatch, "monitors_claim", spy)

    dispatch_due(now=now, horizon_seconds=60, publish=Collect())

    assert len(claimed) == 6
    # Chunk k holds the k-th stretch of the minute: no chunk reaches back before the
    # previous one's last slot (in id order each chunk spanned the whole minute).
    for earlier, later in itertools.pairwise(claimed):
        assert max(earlier) <= min(later)


@pytest.mark.django_db
def test_slots_held_back_are_handed_back_when_a_publish_fails(monkeypatch):
    monkeypatch.setattr(dispatch, "CLAIM_CHUNK", 50)
    now = minute_start() + 2 * MINUTE
    ids = make_monitors(150, next_check_at=now - 3 * MINUTE)
    calls = []

    def fails_on_the_second_call(slots):
        calls.append(slots)
        if len(calls) == 2:
            raise ConnectionError("broker away")

    with pytest.raises(ConnectionError):
        dispatch_due(now=now, horizon_seconds=60, batch_size=2, publish=fails_on_the_second_call)
    collect = Collect()
    dispatch_due(now=now, horizon_seconds=60, batch_size=10, publish=collect)

    sent_first = {s.monitor_id for s in calls[0]}
    assert sent_first and {s.monitor_id for s in collect.slots} == set(ids) - sent_first


@pytest.mark.django_db
def test_a_thirty_second_monitor_gets_two_slots_a_minute():
    now = minute_start()
    make_monitors(1, next_check_at=now - MINUTE, interval_seconds=30)
    collect = Collect()

    dispatch_due(now=now, horizon_seconds=60, publish=collect)

    times = [s.scheduled_ms for s in collect.slots]
    assert len(times) == 2 and times[1] - times[0] == 30_000


@pytest.mark.django_db
def test_slots_whose_publish_fails_are_handed_back(monkeypatch):
    now = timezone.now()
    ids = make_monitors(3, next_check_at=now - dt.timedelta(seconds=1))

    def broken(slots):
        raise ConnectionError("broker away")

    with pytest.raises(ConnectionError):
        dispatch_due(now=now, publish=broken)
    collect = Collect()
    dispatch_due(now=now, publish=collect)

    assert {s.monitor_id for s in collect.slots} == set(ids)


def test_slot_batches_group_by_second_and_cap_the_size():
    slots = [Slot(1_000_000 + n * 10, n) for n in range(250)]  # 2.5 s of slots

    batches = dispatch.slot_batches(slots, batch_size=40)

    assert sum(len(b) for b in batches) == 250
    assert all(len(b) <= 40 for b in batches)
    assert all(len({s.scheduled_ms // 1000 for s in b}) == 1 for b in batches)


@pytest.mark.django_db
def test_it_publishes_batches_to_the_probes_queue_with_eta_and_expiry(settings):
    from sentinel.celery import app

    now = timezone.now()
    ids = make_monitors(5, next_check_at=now + dt.timedelta(seconds=30))
    with Connection(settings.CELERY_BROKER_URL) as conn:
        queue = conn.SimpleQueue(app.amqp.queues["probes"])  # type: ignore[arg-type]
        queue.clear()
        report = dispatch_due(now=now, batch_size=2)
        messages = []
        while True:
            try:
                message = queue.get(timeout=1)
            except queue.Empty:
                break
            messages.append(message)
            message.ack()
        queue.close()

    assert report.claimed >= 5
    assert {m.headers["task"] for m in messages} == {"monitors.probes.check_batch"}
    sent = [pk for m in messages for pk, _ms in m.payload[0][0]]
    assert sorted(set(sent)) == ids
    assert len(sent) == len(set(sent)) or report.claimed == len(sent)
    for message in messages:
        eta = dt.datetime.fromisoformat(message.headers["eta"])
        expires = dt.datetime.fromisoformat(message.headers["expires"])
        assert eta > now and expires == eta + dt.timedelta(
            seconds=settings.SENTINEL_PROBE_EXPIRE_SECONDS
        )
        assert message.properties["delivery_mode"] == 2  # persistent


@pytest.mark.django_db
def test_each_published_slot_carries_what_its_check_needs(probes_queue):
    now = timezone.now()
    ids = make_monitors(3, next_check_at=now + dt.timedelta(seconds=30), keyword="up")

    dispatch_due(now=now, batch_size=2)

    messages = probes_queue()
    sent = [
        slot
        for m in messages
        for slot in message_decode(
            *m.payload[0], version=m.payload[1]["v"], specs=m.payload[1]["specs"]
        )
    ]
    assert {slot.monitor_id: slot.spec for slot in sent} == {
        pk: {"url": f"http://127.0.0.1:9/{n}", "keyword": "up"} for n, pk in enumerate(ids)
    }


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_dispatchers_never_claim_a_slot_twice(monkeypatch):
    # Committed rows and two real connections: the claim's row locks are what is tested.
    monkeypatch.setattr(dispatch, "CLAIM_CHUNK", 50)
    now = minute_start()
    ids = make_monitors(600, next_check_at=now - dt.timedelta(seconds=2))
    collectors = [Collect(), Collect()]
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def run(collect):
        try:
            start.wait()
            dispatch_due(now=now, horizon_seconds=70, publish=collect)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(c,)) for c in collectors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == []
    claimed = Counter((s.monitor_id, s.scheduled_ms) for c in collectors for s in c.slots)
    assert max(claimed.values()) == 1  # no slot handed out twice
    assert {pk for pk, _ in claimed} == set(ids)  # and none left out
    # A monitor may have two slots in the window (its overdue one, then its phase
    # slot), never two close together.
    by_monitor: dict[int, list[int]] = {}
    for pk, ms in sorted(claimed):
        by_monitor.setdefault(pk, []).append(ms)
    assert all(
        b - a >= 30_000 for times in by_monitor.values() for a, b in itertools.pairwise(times)
    )
    assert all(c.slots for c in collectors)  # and both dispatchers really took part


@pytest.mark.django_db
def test_a_claim_chosen_as_a_deadlock_victim_is_taken_again(monkeypatch):
    # InnoDB's answer to a deadlock is to roll the victim back whole; the race itself
    # cannot be produced on demand, so the first claim gets that answer here.
    from django.db import OperationalError

    now = timezone.now()
    ids = make_monitors(5, next_check_at=now - dt.timedelta(seconds=1))
    real_claim, calls = dispatch._claim, []

    def claim_once_deadlocked(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError(1213, "Deadlock found when trying to get lock")
        return real_claim(*args, **kwargs)

    monkeypatch.setattr(dispatch, "_claim", claim_once_deadlocked)
    collect = Collect()

    dispatch_due(now=now, horizon_seconds=70, publish=collect)

    assert sorted({slot.monitor_id for slot in collect.slots}) == ids
    assert len(calls) >= 2  # the victim, its retry, then any later chunk


@pytest.mark.django_db
def test_other_database_errors_in_a_claim_are_not_retried(monkeypatch):
    from django.db import OperationalError

    make_monitors(1, next_check_at=timezone.now())
    calls = []

    def claim_fails(*args, **kwargs):
        calls.append(1)
        raise OperationalError(2013, "Lost connection to server during query")

    monkeypatch.setattr(dispatch, "_claim", claim_fails)

    with pytest.raises(OperationalError):
        dispatch_due(now=timezone.now(), horizon_seconds=70, publish=Collect())
    assert len(calls) == 1


@pytest.mark.django_db
def test_a_claim_locks_its_chunk_of_monitors_along_the_primary_key():
    """In id order, as the probes' live-state update locks: one statement of 1,000 ids
    made MariaDB lock through a table of values and deadlock with a probe batch."""
    ids = list(reversed(range(1, dispatch.CLAIM_CHUNK + 1)))  # slot order, not id order
    horizon = timezone.now()

    with CaptureQueriesContext(connection) as queries:
        dispatch._claim(ids, now_ms=to_ms(horizon), horizon=horizon)

    locking = [q["sql"] for q in queries.captured_queries if q["sql"].endswith("FOR UPDATE")]
    # One transaction, ascending statements of 500.
    assert len(locking) == dispatch.CLAIM_CHUNK // IN_LIST_MAX
    firsts = [int(sql.split(" IN (")[1].split(",")[0]) for sql in locking]
    assert firsts == sorted(firsts)
    for sql in locking:
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN {sql}")
            names = [c[0] for c in cursor.description]
            plans = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        assert [(p["table"], p["key"], p["type"]) for p in plans] == [
            (Monitor._meta.db_table, "PRIMARY", "range")
        ]


# Commits only happen outside the test's own transaction.
@pytest.mark.django_db(transaction=True)
def test_a_dispatch_commits_once_per_claim_chunk(monkeypatch):
    monkeypatch.setattr(dispatch, "CLAIM_CHUNK", 1000)
    now = minute_start() + 2 * MINUTE  # every slot well ahead of the wall clock
    make_monitors(2500, next_check_at=now + dt.timedelta(seconds=30))  # one slot each
    collect = Collect()

    before = session_status("Com_commit")
    report = dispatch_due(now=now, horizon_seconds=60, publish=collect)
    commits = session_status("Com_commit") - before

    assert report.claimed == len(collect.slots) == 2500
    assert commits == 3  # 1,000 + 1,000 + 500: at 10,000 a chunk, 0.1 per 1,000 slots


@pytest.mark.django_db(transaction=True)
def test_slots_due_within_seconds_are_claimed_in_small_chunks_first(monkeypatch):
    # A cold start: the first seconds must not wait for a long claim.
    monkeypatch.setattr(dispatch, "CLAIM_SOON_CHUNK", 100)
    now = timezone.now()
    make_monitors(1200, next_check_at=now - 3 * MINUTE)
    sizes: list[int] = []
    claim = dispatch.monitors_claim

    def spy(**kwargs):
        sizes.append(len(kwargs["monitor_ids"]))
        return claim(**kwargs)

    monkeypatch.setattr(dispatch, "monitors_claim", spy)
    # The clock stands still: on a loaded machine the claims themselves take seconds,
    # which would make more of the slots "soon".
    monkeypatch.setattr(dispatch, "wall_clock_ms", lambda: to_ms(now))

    dispatch_due(now=now, horizon_seconds=60, publish=Collect())

    # Catch-up slots spread over the minute from now: those of the first 5 s (about
    # 100) in small chunks, the rest in one.
    assert sizes[0] == 100 and sizes[-1] > 900 and sum(sizes) == 1200
