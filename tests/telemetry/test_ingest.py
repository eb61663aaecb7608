from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import json
import logging
import random
import threading
import time

import orjson
import pytest
from django.core.management import call_command
from django.db import DataError, OperationalError, connection

from core.reachability import OUTAGES_KEY
from telemetry.buffer import (
    DEAD_LETTER_COUNT_KEY,
    DEAD_LETTER_KEY,
    DEPTH_KEY,
    GROUP,
    STREAM_KEY,
    buffer_depth,
    buffer_push,
    buffer_take,
)
from telemetry.histogram import BUCKET_BOUNDS_MS, BUCKET_COLUMNS
from telemetry.ingest import (
    PERIODIC_LOCK_KEY,
    ingest_batch,
    ingest_drain,
    ingest_forever,
    ingest_periodic,
)
from telemetry.ingest import loop as ingest_loop
from telemetry.ingest import store as ingest_store
from telemetry.records import STORED_FIELDS, WIRE_FIELDS, CheckResult, FailureKind, payload_encode
from telemetry.rollups import ROLLUP_COLUMNS, rollups_fold
from tests.factories import CheckResultFactory, MonitorFactory
from tests.telemetry.conftest import session_status, snapshot, store

pytestmark = pytest.mark.usefixtures("telemetry_tables")


class Crash(BaseException):
    """Like a kill: not an Exception, so no handler of ours catches it."""


def make_results(monitors, count, *, seed=1, start=None):
    """``count`` results spread over three hours and the given monitors, a seventh
    of them failed, latencies across every histogram bucket."""
    rng = random.Random(seed)
    start = start or dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    start -= dt.timedelta(hours=3)
    results = []
    for n in range(count):
        ok = rng.random() > 1 / 7
        results.append(
            CheckResultFactory(
                monitor_id=monitors[n % len(monitors)].id,
                scheduled_at=start + dt.timedelta(seconds=n * 10800 // count, milliseconds=n),
                duration_ms=rng.choice([0, 10, 11, 99, 100, 480, 2500, 30000, 30001, 45000]),
                ok=ok,
                failure=None if ok else FailureKind.TIMEOUT,
                error="" if ok else "timed out after 10 s, 100% of the 'budget'",
                dns_ms=rng.choice([None, 3]),
            )
        )
    return results


def count_rows(table="check_result"):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {table}")
        return cursor.fetchone()[0]


# Commits matter here (a savepoint is not a COMMIT), so the test runs outside the
# test transaction.
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("load_data", "loads", "inserts"), [(True, 1, 1), (False, 0, 2)])
def test_it_stores_a_batch_in_one_transaction_and_one_statement(
    buffer, settings, load_data, loads, inserts
):
    settings.TELEMETRY_INGEST_LOAD_DATA = load_data
    monitors = MonitorFactory.create_batch(3)
    # All up: a state change would add the incident's INSERT to the count.
    results = [
        dataclasses.replace(r, ok=True, failure=None, error="")
        for r in make_results(monitors, 1000)
    ]
    buffer_push(results=results)
    before = {
        name: session_status(name)
        for name in ("Com_commit", "Com_insert", "Com_load", "Com_update_multi")
    }

    outcome = ingest_batch(consumer="test", batch_size=1000)

    assert outcome.stored == 1000
    after = {name: session_status(name) - before[name] for name in before}
    # One LOAD DATA (or INSERT) into check_result, one INSERT of the pending rollup row,
    # one UPDATE of the monitors' live state and one of their checkpoints (new monitors
    # get their first), all in one transaction.
    assert after == {
        "Com_commit": 1,
        "Com_insert": inserts,
        "Com_load": loads,
        "Com_update_multi": 2,
    }
    assert count_rows() == 1000
    assert buffer_depth() == 0
    assert stored_results() == sorted(results, key=lambda r: (r.monitor_id, r.scheduled_at))
    assert_rollups_match_raw_rows()


def stored_results():
    """check_result's rows as results, in primary key order."""
    columns = ", ".join(STORED_FIELDS)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM check_result ORDER BY monitor_id, scheduled_at")
        rows = cursor.fetchall()
    return [
        CheckResult(
            **{
                name: value.replace(tzinfo=dt.UTC) if isinstance(value, dt.datetime) else value
                for name, value in zip(STORED_FIELDS, row, strict=True)
            }
            | {"ok": bool(row[4]), "failure": row[6] and FailureKind(row[6])}
        )
        for row in rows
    ]


@pytest.mark.django_db(transaction=True)
def test_text_with_tabs_newlines_and_backslashes_is_stored_as_it_was(buffer):
    monitor = MonitorFactory()
    error = "line one\nline\ttwo \\N C:\\path 'quoted' \"double\" é 😀"
    result = CheckResultFactory(monitor_id=monitor.id, ok=False, error=error)
    buffer_push(results=[result])

    assert ingest_batch(consumer="test").stored == 1

    assert stored_results() == [result]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("load_data", [True, False])
def test_rows_with_and_without_the_expiring_subject_are_stored_without_it(
    buffer, settings, load_data
):
    settings.TELEMETRY_INGEST_LOAD_DATA = load_data
    monitor = MonitorFactory()
    with_subject, earlier = make_results([monitor], 2)
    with_subject = CheckResultFactory(
        **{name: getattr(with_subject, name) for name in STORED_FIELDS},
        tls_expiring_subject="CN=Test Intermediate CA",
    )
    # One entry as this release writes it, one of 13-element rows as earlier ones did.
    buffer_push(results=[with_subject])
    buffer.xadd(STREAM_KEY, {"r": orjson.dumps([earlier.to_wire()[:13]]), "n": 1})

    outcome = ingest_batch(consumer="test")

    assert (outcome.stored, outcome.dead_letters) == (2, 0)
    assert stored_results() == sorted([with_subject, earlier], key=lambda r: r.scheduled_at)


def test_a_bad_row_of_a_probe_batch_is_set_apart_naming_its_field_and_the_rest_stored(buffer):
    monitor = MonitorFactory()
    results = make_results([monitor], 4)
    rows = [result.to_wire() for result in results]
    rows[1][WIRE_FIELDS.index("tls_expiring_subject")] = {"CN": "x"}
    rows[2][WIRE_FIELDS.index("duration_ms")] = True
    buffer.xadd(STREAM_KEY, {"r": orjson.dumps(rows), "n": 4})

    outcome = ingest_batch(consumer="test")

    assert (outcome.stored, outcome.dead_letters) == (2, 2)
    reasons = sorted(json.loads(item)["reason"] for item in buffer.lrange(DEAD_LETTER_KEY, 0, -1))
    assert reasons[0].startswith("duration_ms must be an integer from 0 to 4294967295")
    assert reasons[1].startswith("tls_expiring_subject must be a string")
    assert count_rows() == 2 and buffer_depth() == 0


@pytest.mark.django_db(transaction=True)
def test_every_failure_kind_is_stored_as_it_was(buffer):
    monitor = MonitorFactory()
    results = [
        CheckResultFactory(monitor_id=monitor.id, ok=False, failure=kind, error=f"{kind} here")
        for kind in FailureKind
    ]
    buffer_push(results=results)

    assert ingest_batch(consumer="test").stored == len(results)

    assert sorted(r.failure for r in stored_results()) == sorted(FailureKind)


@pytest.mark.django_db(transaction=True)
def test_it_falls_back_to_insert_when_mysql_refuses_local_files(buffer, caplog, monkeypatch):
    monitor = MonitorFactory()
    monkeypatch.setattr(ingest_store, "_load_data_refused", False)
    options = connection.settings_dict["OPTIONS"]
    connection.close()
    monkeypatch.setitem(options, "local_infile", 0)  # a client (or server) that refuses
    buffer_push(results=make_results([monitor], 20))
    try:
        with caplog.at_level(logging.WARNING, logger="telemetry.ingest"):
            assert ingest_batch(consumer="test").stored == 20
            yesterday = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
            buffer_push(results=make_results([monitor], 20, seed=2, start=yesterday))
            assert ingest_batch(consumer="test").stored == 20
    finally:
        connection.close()

    assert count_rows() == 40
    [line] = [r.getMessage() for r in caplog.records if r.name == "telemetry.ingest"]
    assert line.startswith("MySQL refuses LOAD DATA LOCAL") and "multi-row INSERT" in line


def test_it_does_nothing_when_a_batch_is_replayed(buffer):
    monitors = MonitorFactory.create_batch(3)
    results = make_results(monitors, 300)
    buffer_push(results=results)
    assert ingest_batch(consumer="test").stored == 300
    before = snapshot()

    buffer_push(results=results)  # e.g. a probe worker retried a push that had landed
    outcome = ingest_batch(consumer="test")

    assert (outcome.stored, outcome.duplicates) == (0, 300)
    assert snapshot() == before
    assert buffer_depth() == 0


def test_a_partly_stored_batch_counts_each_check_once(buffer):
    monitors = MonitorFactory.create_batch(4)
    results = make_results(monitors, 400)
    store(results[::3])

    outcome = store(results)

    assert (outcome.stored, outcome.duplicates) == (400 - len(results[::3]), len(results[::3]))
    assert count_rows() == 400
    assert_rollups_match_raw_rows()


def test_duplicates_within_one_batch_are_stored_once(buffer):
    monitor = MonitorFactory()
    result = CheckResultFactory(monitor_id=monitor.id)

    outcome = store([result, result])

    assert (outcome.stored, outcome.duplicates) == (1, 1)
    assert_rollups_match_raw_rows()


def test_rollups_equal_a_raw_sql_aggregate_over_the_same_rows(buffer):
    monitors = MonitorFactory.create_batch(5)
    buffer_push(results=make_results(monitors, 2000, seed=7))

    while ingest_batch(consumer="test", batch_size=333).taken:
        pass

    assert count_rows() == 2000
    assert_rollups_match_raw_rows()
    assert count_rows("check_rollup_hourly") >= 5 * 3


def assert_rollups_match_raw_rows():
    """Once the pending deltas are folded, every rollup row equals GROUP BY over
    check_result (latency of ok checks)."""
    while rollups_fold():
        pass
    assert count_rows("check_rollup_pending") == 0
    bounds = (-1, *BUCKET_BOUNDS_MS)
    buckets = ", ".join(
        f"SUM(ok = 1 AND duration_ms > {low} AND duration_ms <= {high})"
        for low, high in itertools.pairwise(bounds)
    )
    aggregate = (
        "SELECT monitor_id, {period} AS p, COUNT(*), SUM(ok = 0), "
        "COALESCE(SUM(IF(ok = 1, duration_ms, 0)), 0), MIN(IF(ok = 1, duration_ms, NULL)), "
        f"MAX(IF(ok = 1, duration_ms, NULL)), {buckets}, "
        f"SUM(ok = 1 AND duration_ms > {BUCKET_BOUNDS_MS[-1]}) "
        "FROM check_result GROUP BY monitor_id, p ORDER BY monitor_id, p"
    )
    columns = ", ".join(ROLLUP_COLUMNS)
    for table, column, period in (
        ("check_rollup_hourly", "hour_start", "DATE_FORMAT(scheduled_at, '%Y-%m-%d %H:00:00')"),
        ("check_rollup_daily", "day", "DATE(scheduled_at)"),
    ):
        with connection.cursor() as cursor:
            cursor.execute(aggregate.format(period=period))
            expected = [
                tuple(int(v) if v is not None and i != 1 else v for i, v in enumerate(r))
                for r in cursor.fetchall()
            ]
            cursor.execute(
                f"SELECT monitor_id, {column}, {columns} FROM {table} ORDER BY monitor_id, {column}"
            )
            actual = [
                tuple(int(v) if v is not None and i != 1 else v for i, v in enumerate(r))
                for r in cursor.fetchall()
            ]
        assert len(actual) == len(expected) > 0
        for got, want in zip(actual, expected, strict=True):
            assert got[0] == want[0] and str(got[1])[:13] == str(want[1])[:13]
            assert got[2:] == want[2:], f"{table} {got[:2]}"
    assert len(BUCKET_COLUMNS) == len(BUCKET_BOUNDS_MS) + 1


@pytest.mark.django_db(transaction=True)  # a crash must be tested across real commits
@pytest.mark.parametrize("step", ["take", "insert", "commit"])
def test_a_crash_at_any_step_loses_nothing_and_stores_nothing_twice(
    buffer, settings, monkeypatch, step
):
    monitors = MonitorFactory.create_batch(3)
    buffer_push(results=make_results(monitors, 500))
    module, target = {
        "take": (ingest_loop, "entries_parse"),  # taken from Redis, nothing written yet
        "insert": (ingest_store, "rollups_append"),  # raw rows inserted, not committed
        "commit": (ingest_loop, "buffer_ack"),  # committed, not acknowledged in Redis
    }[step]
    original = getattr(module, target)

    def crash(*args, **kwargs):
        raise Crash(step)

    monkeypatch.setattr(module, target, crash)
    with pytest.raises(Crash):
        ingest_batch(consumer="dies")
    monkeypatch.setattr(module, target, original)
    assert buffer_depth() == 500

    # Another ingestor reclaims the dead consumer's batch once it is idle long enough.
    settings.TELEMETRY_INGEST_RECLAIM_SECONDS = 0
    outcome = ingest_batch(consumer="survivor", reclaim=True)

    assert outcome.reclaimed == 500
    assert count_rows() == 500
    assert buffer_depth() == 0
    assert_rollups_match_raw_rows()


@pytest.mark.django_db(transaction=True)  # a crash must be tested across real commits
@pytest.mark.parametrize(
    ("step", "module", "target"),
    [
        # The second batch, taken ahead on the helper thread while the first is stored.
        ("take ahead", ingest_loop, "entries_parse"),
        # The second batch's rows inserted, not committed; the third taken ahead.
        ("insert", ingest_store, "rollups_append"),
        # The second batch committed, not acknowledged; the third taken ahead.
        ("commit", ingest_loop, "buffer_ack"),
    ],
)
def test_a_crash_in_the_pipelined_drain_loses_nothing_and_stores_nothing_twice(
    buffer, monkeypatch, step, module, target
):
    monitors = MonitorFactory.create_batch(3)
    results = make_results(monitors, 500)
    for offset in range(0, 500, 100):  # five probe batches: five batches of 100
        buffer_push(results=results[offset : offset + 100])
    original = getattr(module, target)
    calls: list[int] = []

    def crash_the_second_time(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise Crash(step)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, target, crash_the_second_time)
    with pytest.raises(Crash):
        ingest_drain(consumer="dies", max_seconds=60, batch_size=100)
    monkeypatch.setattr(module, target, original)
    assert count_rows() == (100 if step != "commit" else 200)
    # Nothing taken is lost: what the crash left is pending for the consumer.
    assert buffer_depth() == 400

    outcome = ingest_drain(consumer="dies", max_seconds=60, batch_size=100)  # restarted

    assert outcome.stored == (400 if step != "commit" else 300)
    assert count_rows() == 500
    assert buffer_depth() == 0 and buffer.xpending(STREAM_KEY, GROUP)["pending"] == 0
    assert stored_results() == sorted(results, key=lambda r: (r.monitor_id, r.scheduled_at))
    assert_rollups_match_raw_rows()


def test_a_drain_stopped_by_its_deadline_leaves_nothing_taken_and_unstored(buffer):
    monitor = MonitorFactory()
    results = make_results([monitor], 300)
    for offset in range(0, 300, 100):
        buffer_push(results=results[offset : offset + 100])

    outcome = ingest_drain(consumer="periodic", max_seconds=0, batch_size=100)

    assert (outcome.taken, outcome.stored) == (100, 100)
    assert buffer.xpending(STREAM_KEY, GROUP)["pending"] == 0
    assert buffer_depth() == 200


def test_the_drain_stores_the_batches_in_order_one_transaction_each(buffer, monkeypatch):
    monitors = MonitorFactory.create_batch(2)
    results = make_results(monitors, 400)
    for offset in range(0, 400, 100):
        buffer_push(results=results[offset : offset + 100])
    original = ingest_store.rows_store
    stored: list[int] = []

    def one_transaction(**kwargs):
        stored.append(min(row[1] for row in kwargs["rows"]))
        return original(**kwargs)

    monkeypatch.setattr(ingest_loop, "rows_store", one_transaction)

    outcome = ingest_drain(consumer="test", max_seconds=60, batch_size=100)

    assert outcome.stored == 400 and len(stored) == 4
    assert stored == sorted(stored)  # taken ahead, stored in the order taken
    assert_rollups_match_raw_rows()


def test_the_next_batch_is_taken_once_the_batch_before_goes_to_mysql(buffer, monkeypatch):
    # Before that, the storing thread's Python would share the GIL with the take.
    monitors = MonitorFactory.create_batch(2)
    results = make_results(monitors, 400)
    for offset in range(0, 400, 100):
        buffer_push(results=results[offset : offset + 100])
    events: list[str] = []
    take, load = ingest_loop._batch_take, ingest_store._load_data

    def taking(**kwargs):
        events.append("take")
        return take(**kwargs)

    def loading(*args):
        events.append("load")
        return load(*args)

    monkeypatch.setattr(ingest_loop, "_batch_take", taking)
    monkeypatch.setattr(ingest_store, "_load_data", loading)
    monkeypatch.setattr(ingest_loop, "SEND_WAIT_SECONDS", 5)  # a wait never ends by itself
    started = time.monotonic()

    assert ingest_drain(consumer="test", max_seconds=60, batch_size=100).stored == 400

    assert events == ["take", "load"] * 4 + ["take"]  # the last take finds nothing
    assert time.monotonic() - started < 5  # each wait ended when its batch was sent


def test_two_consumers_never_take_the_same_entry(buffer):
    monitor = MonitorFactory()
    results = make_results([monitor], 100)
    for offset in range(0, 100, 10):  # ten probe batches of ten
        buffer_push(results=results[offset : offset + 10])

    first, _ = buffer_take(consumer="a", count=60, reclaim=False)
    second, _ = buffer_take(consumer="b", count=60, reclaim=False)

    assert sum(e.count for e in first) == 60 and sum(e.count for e in second) == 40
    assert not {e.entry_id for e in first} & {e.entry_id for e in second}


def test_a_batch_takes_whole_entries_up_to_about_its_size(buffer):
    monitor = MonitorFactory()
    results = make_results([monitor], 1000)
    for offset in range(0, 1000, 250):  # four probe batches of 250
        buffer_push(results=results[offset : offset + 250])

    taken, _ = buffer_take(consumer="a", count=600, reclaim=False)

    assert [e.count for e in taken] == [250, 250, 250]


def test_a_consumer_takes_its_own_pending_batch_back_first(buffer):
    monitor = MonitorFactory()
    results = make_results([monitor], 30)
    for offset in range(0, 30, 10):
        buffer_push(results=results[offset : offset + 10])
    taken, _ = buffer_take(consumer="a", count=10, reclaim=False)

    again, _ = buffer_take(consumer="a", count=10, reclaim=False)

    assert [e.entry_id for e in again] == [e.entry_id for e in taken]


def test_it_keeps_reclaiming_a_dead_consumers_backlog_before_new_entries(buffer, settings):
    monitor = MonitorFactory()
    results = make_results([monitor], 50)
    for offset in range(0, 50, 10):
        buffer_push(results=results[offset : offset + 10])
    # A consumer killed with a batch being stored and the next taken ahead.
    stored, _ = buffer_take(consumer="dead", count=10, reclaim=False)
    ahead, _ = buffer_take(consumer="dead", count=10, reclaim=False, own_pending=False)
    # Pending a minute, without waiting one: the survivor's own entries stay younger.
    buffer.xclaim(STREAM_KEY, GROUP, "dead", 0, [e.entry_id for e in stored + ahead], idle=60_000)
    settings.TELEMETRY_INGEST_RECLAIM_SECONDS = 30

    first, reclaimed_first = buffer_take(consumer="survivor", count=10, reclaim=True)
    # Taken ahead while the first is stored, as the ingest loop does.
    second, reclaimed_second = buffer_take(
        consumer="survivor", count=10, reclaim=None, own_pending=False
    )
    third, reclaimed_third = buffer_take(
        consumer="survivor", count=10, reclaim=None, own_pending=False
    )

    assert [e.entry_id for e in first + second] == [e.entry_id for e in stored + ahead]
    assert (reclaimed_first, reclaimed_second) == (10, 10)
    assert reclaimed_third == 0 and third  # the backlog is gone: new entries again


def test_it_moves_malformed_entries_to_the_dead_letter_list(buffer):
    monitor = MonitorFactory()
    deleted = MonitorFactory()
    good = make_results([monitor], 5)
    orphan = CheckResultFactory(monitor_id=deleted.id)
    deleted.delete()
    valid = dict(zip(WIRE_FIELDS, good[0].to_wire(), strict=True))  # an earlier release's form
    bad = {
        "not JSON": b"{oops",
        "missing fields: ok": json.dumps({k: v for k, v in valid.items() if k != "ok"}),
        "duration_ms must be an integer": json.dumps({**valid, "duration_ms": "120"}),
        "unknown failure kind": json.dumps({**valid, "failure": "gremlins"}),
        "status_code must be an integer from 0 to 65535": json.dumps(
            {**valid, "status_code": 70000}
        ),
        "outside the stored window": json.dumps({**valid, "scheduled_at": 1000}),
        "does not exist (deleted?)": payload_encode([orphan]),
    }
    for raw in bad.values():
        buffer.xadd(STREAM_KEY, {"r": raw})
    buffer.xadd(STREAM_KEY, {"something": "else"})
    # A probe batch with one broken row among good ones: only that row is set apart.
    broken = good[1].to_wire()
    broken[WIRE_FIELDS.index("ok")] = "yes"
    buffer.xadd(STREAM_KEY, {"r": orjson.dumps([good[0].to_wire(), broken]), "n": 2})
    buffer_push(results=good[1:])

    outcome = ingest_batch(consumer="test")

    assert (outcome.stored, outcome.dead_letters) == (5, 9)
    assert count_rows() == 5
    letters = [json.loads(item) for item in buffer.lrange(DEAD_LETTER_KEY, 0, -1)]
    reasons = " | ".join(letter["reason"] for letter in letters)
    for expected in [*bad, "entry has no 'r' field", "ok must be true or false"]:
        assert expected in reasons
    [row_letter] = [letter for letter in letters if "ok must be" in letter["reason"]]
    assert json.loads(row_letter["raw"]) == broken
    assert int(buffer.get(DEAD_LETTER_COUNT_KEY)) == 9
    assert buffer_depth() == 0


@pytest.mark.django_db(transaction=True)  # the deletion must commit for ingest to hear of it
def test_results_of_a_monitor_deleted_after_ingest_saw_it_become_dead_letters(buffer):
    monitor, other = MonitorFactory.create_batch(2)
    buffer_push(results=make_results([monitor, other], 4))
    assert ingest_batch(consumer="test").stored == 4  # ingest now knows both exist

    gone = MonitorFactory.build(id=monitor.id)  # its id, once the row is deleted
    monitor.delete()
    yesterday = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    buffer_push(results=make_results([gone, other], 4, seed=2, start=yesterday))
    outcome = ingest_batch(consumer="test")

    assert (outcome.stored, outcome.dead_letters) == (2, 2)
    letters = [json.loads(item) for item in buffer.lrange(DEAD_LETTER_KEY, 0, -1)]
    assert {letter["reason"] for letter in letters} == {
        f"monitor {gone.id} does not exist (deleted?)"
    }


# The connection is pointed at a closed port for the failing attempt; doing that inside
# a test transaction would lose the transaction.
@pytest.mark.django_db(transaction=True)
def test_results_stay_in_redis_while_mysql_is_down_and_drain_after(buffer, caplog):
    monitors = MonitorFactory.create_batch(2)
    buffer_push(results=make_results(monitors, 250))
    port = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = "1"
    try:
        with caplog.at_level(logging.WARNING, logger="telemetry.ingest"):
            assert ingest_periodic() is None
    finally:
        connection.close()
        connection.settings_dict["PORT"] = port

    assert buffer_depth() == 250
    [line] = [r.getMessage() for r in caplog.records if r.name == "telemetry.ingest"]
    assert (
        line.startswith("MySQL is unreachable at mysql://") and "stay in the Redis buffer" in line
    )
    assert "Traceback" not in caplog.text
    assert buffer.hgetall(OUTAGES_KEY) == {b"database": b"1"}  # /metrics counts the line

    outcome = ingest_periodic()

    assert outcome is not None
    assert outcome.stored == 250
    assert count_rows() == 250
    assert buffer_depth() == 0


def test_the_ingest_loop_logs_and_counts_an_outage_once_however_long_it_lasts(
    buffer, monkeypatch, caplog
):
    monkeypatch.setattr(ingest_loop.time, "sleep", lambda seconds: None)
    backoff = ingest_loop._Backoff()
    down = OperationalError(2003, "Can't connect to server on '127.0.0.1' (111)")

    with caplog.at_level(logging.INFO, logger="telemetry.ingest"):
        for _ in range(5):
            backoff.failed("database", down)
        backoff.succeeded()
        backoff.failed("database", down)

    lines = [r.getMessage() for r in caplog.records if r.name == "telemetry.ingest"]
    assert len(lines) == 3, lines
    assert lines[0].startswith("MySQL is unreachable at mysql://")
    assert lines[1].startswith("MySQL at mysql://") and lines[1].endswith("is back; ingest resumes")
    assert lines[2] == lines[0]
    assert buffer.hgetall(OUTAGES_KEY) == {b"database": b"2"}


def test_the_periodic_drain_skips_while_another_holds_the_lock(buffer):
    monitor = MonitorFactory()
    buffer_push(results=make_results([monitor], 10))
    buffer.set(PERIODIC_LOCK_KEY, "another run", ex=60)

    assert ingest_periodic() is None
    assert buffer_depth() == 10

    buffer.delete(PERIODIC_LOCK_KEY)
    outcome = ingest_periodic()
    assert outcome is not None
    assert outcome.stored == 10
    assert buffer.get(PERIODIC_LOCK_KEY) is None


def test_the_ingest_command_drains_the_buffer_once(buffer, capsys):
    monitor = MonitorFactory()
    buffer_push(results=make_results([monitor], 42))

    call_command("ingest", "--once", "--consumer", "cli", "--batch-size", "10")

    assert "stored 42" in capsys.readouterr().out
    assert count_rows() == 42
    info = buffer.xinfo_groups(STREAM_KEY)
    assert [g["name"] for g in info] in ([GROUP.encode()], [GROUP])


def test_the_per_monitor_range_query_is_pruned_and_needs_no_filesort(buffer):
    monitors = MonitorFactory.create_batch(3)
    store(make_results(monitors, 300))
    today = dt.datetime.now(dt.UTC).date()
    query = (
        "SELECT scheduled_at, ok, duration_ms FROM check_result WHERE monitor_id = %s "
        "AND scheduled_at >= %s AND scheduled_at < %s ORDER BY scheduled_at"
    )
    params = [monitors[1].id, today - dt.timedelta(days=1), today + dt.timedelta(days=1)]
    with connection.cursor() as cursor:
        # MySQL 8 shows the partitions column in EXPLAIN; MariaDB needs EXPLAIN PARTITIONS.
        mariadb = connection.mysql_is_mariadb  # type: ignore[attr-defined]
        prefix = "EXPLAIN PARTITIONS" if mariadb else "EXPLAIN"
        cursor.execute(f"{prefix} {query}", params)
        names = [c[0] for c in cursor.description]
        [plan] = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    yesterday, now = today - dt.timedelta(days=1), today
    assert plan["partitions"] == f"p{yesterday:%Y%m%d},p{now:%Y%m%d}"
    assert plan["key"] == "PRIMARY"
    assert "filesort" not in (plan["Extra"] or "")


def test_a_pending_entry_deleted_meanwhile_is_acknowledged_not_dead_lettered(buffer):
    monitor = MonitorFactory()
    for result in make_results([monitor], 3):
        buffer_push(results=[result])
    taken, _ = buffer_take(consumer="a", count=3, reclaim=False)
    # e.g. stored, acknowledged and deleted by a consumer that reclaimed it
    buffer.xdel(STREAM_KEY, taken[0].entry_id)
    buffer.decr(DEPTH_KEY)

    outcome = ingest_batch(consumer="a")

    assert (outcome.taken, outcome.stored, outcome.dead_letters) == (2, 2, 0)
    assert buffer.xpending(STREAM_KEY, GROUP)["pending"] == 0
    assert buffer_depth() == 0 and int(buffer.get(DEPTH_KEY)) == 0


def test_a_result_mysql_refuses_is_isolated_and_dead_lettered(buffer, monkeypatch):
    good, poison = MonitorFactory.create_batch(2)
    original = ingest_store.rows_insert

    def refuse_poison(cursor, rows, **kwargs):
        # Stands in for a value the server rejects that parsing let through.
        if any(row[0] == poison.id for row in rows):
            raise DataError(1264, "Out of range value for column 'duration_ms'")
        return original(cursor, rows, **kwargs)

    monkeypatch.setattr(ingest_store, "rows_insert", refuse_poison)
    buffer_push(results=[*make_results([good], 4), CheckResultFactory(monitor_id=poison.id)])

    outcome = ingest_batch(consumer="test")

    assert (outcome.stored, outcome.dead_letters) == (4, 1)
    [letter] = [json.loads(item) for item in buffer.lrange(DEAD_LETTER_KEY, 0, -1)]
    assert letter["reason"].startswith("MySQL refused it:")
    assert buffer_depth() == 0
    assert_rollups_match_raw_rows()


def test_it_lingers_for_a_trickle_of_results_to_fill_the_batch(buffer):
    monitors = MonitorFactory.create_batch(3)
    results = make_results(monitors, 30)
    buffer_push(results=results[:10])
    # More results arrive while the first ones wait (another probe worker's push).
    pusher = threading.Timer(0.2, lambda: buffer_push(results=results[10:]))
    pusher.start()

    outcome = ingest_batch(consumer="lingers", batch_size=30, block_ms=100, linger_ms=3000)
    pusher.join()

    assert outcome.stored == 30


def test_it_stores_what_it_has_when_the_linger_runs_out(buffer):
    monitors = MonitorFactory.create_batch(2)
    buffer_push(results=make_results(monitors, 5))

    outcome = ingest_batch(consumer="lingers", batch_size=1000, block_ms=100, linger_ms=200)

    assert outcome.stored == 5


def test_the_periodic_drain_leaves_the_buffer_to_a_running_ingest_loop_unless_it_falls_behind(
    buffer, settings
):
    monitor = MonitorFactory()
    buffer_push(results=make_results([monitor], 50))
    buffer.set(ingest_loop.LOOP_ALIVE_KEY, "ingest-1", ex=ingest_loop.LOOP_ALIVE_SECONDS)

    assert ingest_periodic() is None  # the loop keeps up: no second consumer
    assert buffer_depth() == 50

    settings.TELEMETRY_INGEST_BATCH_SIZE = 40  # a backlog of more than a batch
    outcome = ingest_periodic()

    assert outcome is not None and outcome.stored == 50
    assert buffer_depth() == 0


# The loop recycles its connection between batches, which the test transaction would
# not survive.
@pytest.mark.django_db(transaction=True)
def test_the_ingest_loop_says_it_is_alive_while_it_works(buffer, monkeypatch):
    monitor = MonitorFactory()
    buffer_push(results=make_results([monitor], 20))
    monkeypatch.setattr(ingest_loop, "IDLE_BLOCK_MS", 10)
    asked = iter(range(3))

    ingest_forever(consumer="loop", should_stop=lambda: next(asked, None) is None)

    assert buffer.get(ingest_loop.LOOP_ALIVE_KEY) == b"loop"
    assert 0 < buffer.ttl(ingest_loop.LOOP_ALIVE_KEY) <= ingest_loop.LOOP_ALIVE_SECONDS
    assert count_rows() == 20
