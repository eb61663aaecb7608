from __future__ import annotations

import dataclasses
import datetime as dt
import threading

import pytest
from django.db import connection, connections, transaction

from telemetry import rollups
from telemetry.buffer import buffer_push
from telemetry.ingest import ingest_batch, ingest_drain, ingest_forever
from telemetry.ingest import loop as ingest_loop
from telemetry.rollups import rollup_deltas, rollups_fold, rollups_pending, rollups_premerge
from tests.factories import CheckResultFactory, MonitorFactory
from tests.telemetry.conftest import store
from tests.telemetry.test_ingest import assert_rollups_match_raw_rows, count_rows, make_results

pytestmark = pytest.mark.usefixtures("telemetry_tables")


class Crash(BaseException):
    """Like a kill: not an Exception, so no handler of ours catches it."""


def hourly_checks(monitor_id):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT SUM(checks) FROM check_rollup_hourly WHERE monitor_id = %s", [monitor_id]
        )
        return cursor.fetchone()[0]


def test_it_keeps_the_deltas_pending_until_a_fold(buffer):
    monitors = MonitorFactory.create_batch(3)
    store(make_results(monitors, 300))

    assert rollups_pending()[:2] == (1, 300)
    assert count_rows("check_rollup_hourly") == 0

    assert rollups_fold() == 300
    assert rollups_pending()[:2] == (0, 0)
    assert_rollups_match_raw_rows()


def test_a_fold_uses_the_sums_added_up_ahead_and_adds_up_only_the_rest(buffer, monkeypatch):
    monitors = MonitorFactory.create_batch(3)
    start = dt.datetime.now(dt.UTC)
    for n in range(2):
        store(make_results(monitors, 100, seed=n, start=start - dt.timedelta(hours=5 * n)))
    rollups_premerge()  # the two batches stored so far, as ingest's helper thread does
    store(make_results(monitors, 100, seed=9, start=start - dt.timedelta(hours=12)))
    added_up: list[int] = []
    merge = rollups._merge_pending

    def counting_merge(payloads, into=None):
        payloads = list(payloads)
        added_up.append(len(payloads))
        return merge(payloads, into)

    monkeypatch.setattr(rollups, "_merge_pending", counting_merge)

    assert rollups_fold() == 300

    assert added_up == [1]  # the third batch only
    assert_rollups_match_raw_rows()


@pytest.mark.django_db(transaction=True)  # the failed batch must really roll back
def test_deltas_added_up_ahead_of_a_batch_that_rolled_back_are_never_folded(buffer):
    monitors = MonitorFactory.create_batch(2)
    start = dt.datetime.now(dt.UTC)
    store(make_results(monitors, 100, seed=1, start=start))
    with pytest.raises(Crash), transaction.atomic():
        store(make_results(monitors, 100, seed=2, start=start - dt.timedelta(hours=6)))
        raise Crash  # after its deltas were appended: the batch's transaction fails
    rollups_premerge()

    assert rollups_fold() == 100

    assert count_rows() == 100
    assert_rollups_match_raw_rows()


def test_sums_added_up_ahead_of_a_fold_that_takes_part_of_them_are_not_used(buffer):
    monitors = MonitorFactory.create_batch(2)
    start = dt.datetime.now(dt.UTC)
    for n in range(3):
        store(make_results(monitors, 50, seed=n, start=start - dt.timedelta(hours=5 * n)))
    rollups_premerge()

    assert rollups_fold(max_pending=1) == 50  # one pending row of three
    assert rollups_fold() == 100

    assert_rollups_match_raw_rows()


def test_more_deltas_than_a_fold_takes_are_not_added_up_ahead(buffer, monkeypatch):
    monkeypatch.setattr(rollups, "FOLD_MAX_RESULTS", 120)
    monitors = MonitorFactory.create_batch(2)
    start = dt.datetime.now(dt.UTC)
    for n in range(3):
        store(make_results(monitors, 50, seed=n, start=start - dt.timedelta(hours=5 * n)))
    rollups_premerge()

    assert rollups._premerged.deltas == {}
    assert rollups_fold(max_pending=3) == 150
    assert_rollups_match_raw_rows()


def test_it_writes_each_monitor_hour_once_for_many_batches(buffer):
    monitor = MonitorFactory()
    start = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    for n in range(5):  # five batches, one check each, all in the same hour
        at = start.replace(minute=n)
        store([CheckResultFactory(monitor_id=monitor.id, scheduled_at=at)])
    assert rollups_pending()[:2] == (5, 5)

    assert rollups_fold() == 5

    assert count_rows("check_rollup_hourly") == count_rows("check_rollup_daily") == 1
    assert hourly_checks(monitor.id) == 5
    assert_rollups_match_raw_rows()


def test_it_merges_an_hour_of_failures_with_an_hour_of_successes(buffer):
    monitor = MonitorFactory()
    at = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    failed = CheckResultFactory(monitor_id=monitor.id, scheduled_at=at, ok=False, duration_ms=9)
    passed = CheckResultFactory(
        monitor_id=monitor.id, scheduled_at=at.replace(minute=1), ok=True, duration_ms=70
    )
    store([failed])
    rollups_fold()  # the hour exists with no successful check: min/max NULL
    store([passed])
    store([dataclasses.replace(failed, scheduled_at=at.replace(minute=2))])

    rollups_fold()

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT checks, failures, latency_min_ms, latency_max_ms FROM check_rollup_hourly"
        )
        assert cursor.fetchall() == ((3, 2, 70, 70),)
    assert_rollups_match_raw_rows()


def test_the_deltas_count_successful_latencies_only():
    hour = int(dt.datetime(2026, 1, 1, 10, tzinfo=dt.UTC).timestamp())
    checks = [(7, hour, 50), (7, hour, -1), (7, hour + 3600, 5)]  # -1: a failure

    deltas = rollup_deltas(checks)

    assert deltas[(7, hour)][:5] == [2, 1, 50, 50, 50]
    assert deltas[(7, hour + 3600)][:5] == [1, 0, 5, 5, 5]


# A fold that dies must be seen across a real rollback, not a savepoint.
@pytest.mark.django_db(transaction=True)
def test_a_fold_that_dies_before_commit_leaves_everything_pending(buffer, monkeypatch):
    monitors = MonitorFactory.create_batch(2)
    store(make_results(monitors, 200))
    upserts = rollups._upserts
    died: list[bool] = []

    def dies_after_the_hourly_upsert(table, *args):
        if table == "check_rollup_daily" and not died:  # made while the hourly one runs
            died.append(True)
            raise Crash
        yield from upserts(table, *args)

    monkeypatch.setattr(rollups, "_upserts", dies_after_the_hourly_upsert)
    with pytest.raises(Crash):
        rollups_fold()

    assert rollups_pending()[:2] == (1, 200)
    assert count_rows("check_rollup_hourly") == 0
    assert rollups_fold() == 200
    assert_rollups_match_raw_rows()


@pytest.mark.django_db(transaction=True)  # two connections, each with its own commits
def test_two_folds_at_once_never_fold_a_delta_twice(buffer, monkeypatch):
    monitors = MonitorFactory.create_batch(2)
    store(make_results(monitors, 100, seed=1))
    holding, release = threading.Event(), threading.Event()
    merge = rollups._merge_pending

    def slow_merge(payloads):
        # The first fold holds its pending rows locked (read FOR UPDATE) meanwhile.
        if threading.current_thread().name == "first-fold":
            holding.set()
            release.wait(10)
        return merge(payloads)

    monkeypatch.setattr(rollups, "_merge_pending", slow_merge)
    folded = []

    def first_fold():
        try:
            folded.append(rollups_fold())
        finally:
            connections.close_all()

    thread = threading.Thread(target=first_fold, name="first-fold")
    thread.start()
    assert holding.wait(10)
    # A second batch arrives while the first fold holds the first delta.
    store(make_results(monitors, 100, seed=2, start=dt.datetime(2026, 1, 1)))

    second = rollups_fold()  # skips the locked delta, folds the new one
    release.set()
    thread.join(10)

    assert (folded, second) == ([100], 100)
    assert rollups_pending()[:2] == (0, 0)
    assert_rollups_match_raw_rows()


def test_a_drain_that_empties_the_buffer_folds_everything(buffer):
    monitors = MonitorFactory.create_batch(4)
    buffer_push(results=make_results(monitors, 1000))

    outcome = ingest_drain(consumer="test", max_seconds=60, batch_size=100)

    assert outcome.stored == 1000
    assert rollups_pending()[:2] == (0, 0)
    assert_rollups_match_raw_rows()


# The loop recycles its connection between batches, as a long-lived process must,
# which the test transaction would not survive.
@pytest.mark.django_db(transaction=True)
def test_the_ingest_loop_folds_as_soon_as_the_buffer_is_idle(buffer, settings, monkeypatch):
    settings.TELEMETRY_ROLLUP_FOLD_SECONDS = 3600  # so only idleness can trigger it
    monitors = MonitorFactory.create_batch(2)
    buffer_push(results=make_results(monitors, 50))
    batches: list[int] = []

    calls: list[int] = []

    def stop_after_an_empty_take():
        calls.append(1)
        return len(batches) >= 2 or len(calls) > 5  # never spin on a failing loop

    original = ingest_loop._batch_store

    def counting_batch(taken, **kwargs):
        outcome = original(taken, **kwargs)
        batches.append(outcome.taken)
        return outcome

    monkeypatch.setattr(ingest_loop, "IDLE_BLOCK_MS", 10)
    monkeypatch.setattr(ingest_loop, "_batch_store", counting_batch)
    ingest_forever(consumer="loop", should_stop=stop_after_an_empty_take)

    # The batch taken ahead when it was told to stop (an empty one) is stored too.
    assert batches[:2] == [50, 0] and set(batches[2:]) <= {0}
    assert rollups_pending()[:2] == (0, 0)
    assert hourly_checks(monitors[0].id) == 25


def test_a_stored_batch_alone_does_not_fold(buffer, settings):
    settings.TELEMETRY_ROLLUP_FOLD_SECONDS = 3600
    monitors = MonitorFactory.create_batch(2)
    buffer_push(results=make_results(monitors, 30))

    taken = ingest_batch(consumer="busy").taken

    assert taken == 30
    assert rollups_pending()[:2] == (1, 30)


def test_the_pending_deltas_say_how_far_the_rollups_trail(buffer):
    assert rollups_pending() == (0, 0, 0.0)
    monitor = MonitorFactory()
    store([CheckResultFactory(monitor_id=monitor.id)])
    with connection.cursor() as cursor:
        cursor.execute("UPDATE check_rollup_pending SET created_at = NOW(3) - INTERVAL 90 SECOND")

    pending = rollups_pending()

    assert (pending.batches, pending.results) == (1, 1)
    assert 90 <= pending.oldest_age_seconds < 100
