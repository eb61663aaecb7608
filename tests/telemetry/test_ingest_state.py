"""Ingest applies the live state, incidents and notification rows with the rows it stores.

Against the real MariaDB and Redis: a batch commits whole or not at all, a replay
changes nothing, late and out-of-order results end where in-order ones do, and two
ingest processes on the same monitors never double an incident.
"""

from __future__ import annotations

import datetime as dt
import random
import threading

import pytest
from django.db import connection, connections
from django.db.models import QuerySet

from alerting.models import Notification
from alerting.services import holds
from alerting.services.sweep import alerts_sweep
from benchmarks.crash import incidents_from
from monitors import state as live_state
from monitors.models import Incident, Monitor
from monitors.state import StateChange
from telemetry.buffer import buffer_depth, buffer_push
from telemetry.ingest import ingest_batch
from telemetry.ingest import store as ingest_store
from telemetry.records import CheckResult
from tests.alerting.conftest import T0, check, collected
from tests.factories import AlertRuleFactory, MonitorFactory, WebhookChannelFactory
from tests.telemetry.conftest import store

pytestmark = pytest.mark.usefixtures("telemetry_tables")

# A sequence with an outage (minutes 2-5), a blip (7) and a recovery: P = pass, F = fail.
SEQUENCE = "PPFFFFPFPPFFP"


def checks(monitor: Monitor, marks: str = SEQUENCE) -> list[CheckResult]:
    return [check(monitor, minute, mark == "P") for minute, mark in enumerate(marks)]


def live(monitor: Monitor) -> tuple:
    monitor.refresh_from_db()
    return (
        monitor.status,
        monitor.consecutive_failures,
        monitor.consecutive_successes,
        monitor.last_checked_at,
        monitor.recent_failures,
    )


def incidents(of: Monitor | QuerySet[Incident]) -> list[tuple]:
    found = Incident.objects.filter(monitor=of) if isinstance(of, Monitor) else of
    return list(found.order_by("started_at").values_list("started_at", "ended_at", "checks_failed"))


def with_down_rule(monitor: Monitor) -> None:
    rule = AlertRuleFactory(monitor=monitor)
    rule.channels.add(WebhookChannelFactory(owner=monitor.owner))


def test_ingest_moves_the_live_state_and_opens_and_closes_incidents():
    monitor = MonitorFactory()

    store(checks(monitor, "PFF"))
    assert live(monitor)[:3] == (Monitor.Status.DOWN, 2, 0)
    [(started, ended, failed)] = incidents(monitor)
    assert (started, ended, failed) == (at(2), None, 2)

    store([check(monitor, 3, False), check(monitor, 4, True)])
    assert live(monitor)[:3] == (Monitor.Status.UP, 0, 1)
    [(_, ended, failed)] = incidents(monitor)
    assert (ended, failed) == (at(4), 3)


def test_a_replayed_batch_changes_nothing(django_capture_on_commit_callbacks):
    monitor = MonitorFactory()
    with_down_rule(monitor)
    batch = checks(monitor, "PFFF")
    with django_capture_on_commit_callbacks(execute=False):
        store(batch)
    before = (live(monitor), incidents(monitor), Notification.objects.count())
    assert before[2] == 1

    with django_capture_on_commit_callbacks(execute=False):
        outcome = store(batch)

    assert outcome.stored == 0
    assert (live(monitor), incidents(monitor), Notification.objects.count()) == before


@pytest.mark.parametrize("seed", range(6))
def test_out_of_order_and_late_results_end_where_in_order_ones_do(seed):
    in_order, shuffled = MonitorFactory(), MonitorFactory()
    for result in checks(in_order):
        store([result])

    results = checks(shuffled)
    random.Random(seed).shuffle(results)
    for start in range(0, len(results), 3):  # batches of up to three, in any order
        store(results[start : start + 3])

    assert live(shuffled) == live(in_order)
    # The open incident follows the final status, whatever the order.
    assert shuffled.incidents.filter(ended_at=None).exists() == (
        live(shuffled)[0] == Monitor.Status.DOWN
    )


def test_late_results_rebuild_the_incidents_the_history_has():
    monitor = MonitorFactory()
    store([check(monitor, 0, True), check(monitor, 1, False)])
    store([check(monitor, 3, True)])  # minute 2 is late
    assert live(monitor)[0] == Monitor.Status.UP

    changes = store_changes([check(monitor, 2, False)])  # 1 and 2 failed, 3 recovered

    assert changes == []  # up before, up after: nothing to alert
    assert live(monitor)[:3] == (Monitor.Status.UP, 0, 1)
    assert incidents(monitor) == [(at(2), at(3), 2)]

    store([check(monitor, 5, False)])
    [change] = store_changes([check(monitor, 4, False)])  # late again: 4 and 5 failed
    assert (change.old_status, change.new_status) == ("up", "down")
    assert live(monitor)[:2] == (Monitor.Status.DOWN, 2)
    assert incidents(monitor)[-1][:2] == (at(5), None)
    assert change.incident_id == Incident.objects.get(monitor=monitor, ended_at=None).pk


def test_an_incident_late_results_show_was_never_confirmed_is_revised_and_announced_up():
    monitor = MonitorFactory()
    store([check(monitor, 0, True), check(monitor, 1, False)])
    [down] = store_changes([check(monitor, 3, False)])  # 1 and 3 in a row, so far
    assert down.new_status == Monitor.Status.DOWN

    [up] = store_changes([check(monitor, 2, True)])  # 1 failed, 2 passed, 3 failed

    assert (up.new_status, up.incident_id) == (Monitor.Status.UP, down.incident_id)
    assert live(monitor)[:2] == (Monitor.Status.UP, 1)
    assert down.incident_id is not None
    incident = Incident.objects.get(pk=down.incident_id)
    assert (incident.ended_at, incident.end_reason) == (at(3), Incident.EndReason.REVISED)
    assert incident.open_monitor_id is None


@pytest.mark.parametrize(
    ("late", "starts"),
    [
        # A catch-up slot checked after the slots on time failed too: it began earlier.
        ([check, 1, False], 2),
        # The check that opened it came first but a late pass shows it began later.
        ([check, 3, True], 5),
    ],
)
def test_an_incident_a_late_result_moves_keeps_its_row_and_its_alerts(
    django_capture_on_commit_callbacks, late, starts
):
    monitor = MonitorFactory()
    with_down_rule(monitor)
    with django_capture_on_commit_callbacks(execute=False):
        store([check(monitor, 0, True), check(monitor, 2, False), check(monitor, 4, False)])
        store([check(monitor, 5, False)])
    [opened] = Incident.objects.filter(monitor=monitor)
    [down] = Notification.objects.filter(monitor=monitor)

    make, minute, ok = late
    with django_capture_on_commit_callbacks(execute=False):
        store([make(monitor, minute, ok)])
        swept = alerts_sweep(now=at(5) + dt.timedelta(minutes=2))

    [incident] = Incident.objects.filter(monitor=monitor)
    assert incident.pk == opened.pk and incident.started_at == at(starts)
    assert (incident.ended_at, incident.end_reason) == (None, "")
    assert live(monitor)[0] == Monitor.Status.DOWN
    # The alert it had is its alert still: no second delivery id, no "up" for a revision.
    assert list(Notification.objects.filter(monitor=monitor)) == [down]
    assert swept["queued"] == 0


def at(minute: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minute)


def store_changes(results: list[CheckResult]) -> list[StateChange]:
    """Store a batch as ingest does; the state changes it announced."""
    found: list[StateChange] = []
    with collected(found):
        store(results)
    return found


def test_a_result_later_than_every_checkpoint_is_stored_but_does_not_move_the_state():
    monitor = MonitorFactory()
    late_minutes = live_state.LATE_WINDOW_MS // 60_000 * 3
    store([check(monitor, late_minutes + m, True) for m in range(0, late_minutes, 5)])
    before = live(monitor)

    outcome = store([check(monitor, 0, False)])

    assert outcome.stored == 1
    assert live(monitor) == before


def test_a_resumed_monitor_does_not_rebuild_its_state_from_before_the_pause():
    monitor = MonitorFactory()
    store([check(monitor, 0, True), check(monitor, 1, True)])
    Monitor.objects.filter(pk=monitor.pk).pause()
    Monitor.objects.filter(pk=monitor.pk).resume()

    store([check(monitor, 3, False)])
    store([check(monitor, 2, False)])  # from before the resume: stored only

    assert live(monitor)[:3] == (Monitor.Status.PENDING, 1, 0)


# Commits matter: each step's failure must roll back a committed-looking batch.
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "step",
    [
        (ingest_store, "rollups_append"),
        (live_state, "_write_states"),
        (live_state, "incidents_apply"),
        (holds, "notify"),
    ],
)
def test_a_batch_commits_its_rows_state_incidents_and_notifications_together(
    buffer, monkeypatch, step
):
    monitor = MonitorFactory()
    with_down_rule(monitor)
    buffer_push(results=checks(monitor, "PFF"))

    def fail(*args, **kwargs):
        raise RuntimeError("injected")

    monkeypatch.setattr(*step, fail)
    with pytest.raises(RuntimeError, match="injected"):
        ingest_batch(consumer="test")

    assert _rows(monitor) == 0
    assert live(monitor)[:2] == (Monitor.Status.PENDING, 0)
    assert incidents(monitor) == []
    assert Notification.objects.count() == 0
    assert buffer_depth() == 3  # still in the buffer, taken again

    monkeypatch.undo()
    ingest_batch(consumer="test")

    assert _rows(monitor) == 3
    assert live(monitor)[:2] == (Monitor.Status.DOWN, 2)
    assert len(incidents(monitor)) == 1
    assert Notification.objects.count() == 1


def _rows(monitor: Monitor) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM check_result WHERE monitor_id = %s", [monitor.pk])
        return cursor.fetchone()[0]


# Two connections, two transactions: outside the test transaction.
@pytest.mark.django_db(transaction=True)
def test_two_ingest_processes_on_the_same_monitors_never_deadlock_or_double_an_incident(buffer):
    monitors = MonitorFactory.create_batch(30)
    rng = random.Random(7)
    marks = {m.pk: "".join(rng.choice("PPFF") for _ in range(40)) for m in monitors}
    for minute in range(40):
        buffer_push(results=[check(m, minute, marks[m.pk][minute] == "P") for m in monitors])
    errors: list[BaseException] = []

    def drain(name: str) -> None:
        try:
            while ingest_batch(consumer=name, batch_size=60).taken:
                pass
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=drain, args=(f"ingest-{n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    for monitor in monitors:
        expected, changes = live_state.state_replay(
            live_state.LiveState(Monitor.Status.PENDING, 0, 0, None),
            checks(monitor, marks[monitor.pk]),
        )
        status, failures, successes, last, recent = live(monitor)
        assert (status, failures, successes, last, recent) == (
            expected.status,
            expected.consecutive_failures,
            expected.consecutive_successes,
            expected.last_checked_at,
            expected.recent_failures,
        )
        assert Incident.objects.filter(monitor=monitor, ended_at=None).count() == (
            status == Monitor.Status.DOWN
        )
        kept = [i[:2] for i in incidents(monitor.incidents.exclude(end_reason="revised"))]
        assert kept == incidents_from(changes)
