from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import IntegrityError, connection, transaction

from monitors.models import Incident, Monitor
from monitors.state import StateChange, monitors_apply_results
from telemetry.ingest import rows_store
from tests.alerting.conftest import T0, check, collected
from tests.factories import MonitorFactory


@pytest.mark.django_db
def test_it_opens_no_incident_for_a_single_failure():
    monitor = MonitorFactory(status=Monitor.Status.UP)

    monitors_apply_results(results=[check(monitor, 0, ok=False)])
    monitors_apply_results(results=[check(monitor, 1, ok=True)])

    assert not Incident.objects.exists()


@pytest.mark.django_db
def test_it_opens_after_n_failures_and_closes_after_m_successes():
    monitor = MonitorFactory(status=Monitor.Status.UP, confirm_failures=3, recover_successes=2)

    monitors_apply_results(results=[check(monitor, 0, False), check(monitor, 1, False)])
    assert not Incident.objects.exists()
    [change] = monitors_apply_results(results=[check(monitor, 2, False)])
    incident = Incident.objects.get()
    assert change.incident_id == incident.pk and change.new_status == "down"
    assert (incident.started_at, incident.checks_failed) == (T0 + dt.timedelta(minutes=2), 3)
    assert (incident.first_failure_kind, incident.first_failure_message) == ("status", "HTTP 503")
    assert incident.is_open and incident.open_monitor_id == monitor.pk

    monitors_apply_results(results=[check(monitor, 3, False), check(monitor, 4, True)])
    incident.refresh_from_db()
    assert incident.is_open and incident.checks_failed == 4
    [change] = monitors_apply_results(results=[check(monitor, 5, True)])

    incident.refresh_from_db()
    assert change.incident_id == incident.pk and change.new_status == "up"
    assert incident.ended_at == T0 + dt.timedelta(minutes=5)
    assert incident.duration == dt.timedelta(minutes=3) and incident.duration_seconds == 180
    assert incident.open_monitor_id is None


@pytest.mark.django_db
def test_pausing_a_down_monitor_ends_its_incident_and_a_resume_starts_a_new_story():
    monitor = MonitorFactory(status=Monitor.Status.UP, confirm_failures=1)
    monitors_apply_results(results=[check(monitor, 0, False)])
    paused_at = T0 + dt.timedelta(minutes=3)
    Monitor.objects.filter(pk=monitor.pk).pause(now=paused_at)

    first = Incident.objects.get()
    assert (first.ended_at, first.end_reason, first.open_monitor_id) == (paused_at, "paused", None)
    assert first.duration_seconds == 180

    Monitor.objects.filter(pk=monitor.pk).resume()
    [change] = monitors_apply_results(results=[check(monitor, 60 * 48, False)])

    assert change.old_status == "pending"
    assert change.incident_id != first.pk
    assert change.incident_id is not None
    assert Incident.objects.get(pk=change.incident_id).started_at == T0 + dt.timedelta(hours=48)


@pytest.mark.django_db
def test_a_monitor_resumed_after_a_pause_while_down_that_passes_is_not_a_recovery():
    monitor = MonitorFactory(status=Monitor.Status.UP, confirm_failures=1)
    monitors_apply_results(results=[check(monitor, 0, False)])
    Monitor.objects.filter(pk=monitor.pk).pause()
    Monitor.objects.filter(pk=monitor.pk).resume()

    [change] = monitors_apply_results(results=[check(monitor, 60 * 48, True)])

    assert (change.old_status, change.new_status, change.incident_id) == ("pending", "up", None)
    assert Incident.objects.get().end_reason == "paused"


@pytest.mark.django_db
def test_the_database_refuses_a_second_open_incident():
    monitor = MonitorFactory()
    Incident.objects.create(monitor=monitor, started_at=T0, open_monitor_id=monitor.pk)

    with pytest.raises(IntegrityError), transaction.atomic():
        Incident.objects.create(monitor=monitor, started_at=T0, open_monitor_id=monitor.pk)


# Threads need their own committed view of the rows, so this test commits for real
# (transaction=True): a row created inside the usual test transaction is invisible
# to another connection, and the point is two connections racing on the row lock.
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("telemetry_tables")
def test_concurrent_ingest_processes_open_one_incident():
    monitor = MonitorFactory(status=Monitor.Status.UP, confirm_failures=2)
    rows_store(rows=[check(monitor, 0, False).to_wire()])
    workers = 6
    barrier = threading.Barrier(workers)
    changes: list[StateChange] = []
    errors: list[BaseException] = []

    def worker(minute: int) -> None:
        try:
            barrier.wait()
            # As ingest stores a batch: the row, then the live state, one transaction.
            rows_store(rows=[check(monitor, minute, False).to_wire()])
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(m,)) for m in range(1, workers + 1)]
    with collected(changes):  # the signal is heard from every thread
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert errors == []
    assert len(changes) == 1  # one "down", whichever order the workers got the lock in
    monitor.refresh_from_db()
    assert (monitor.status, monitor.consecutive_failures) == (Monitor.Status.DOWN, 7)
    # Results that lost the race to a later one are applied in their place: the history
    # has one outage, confirmed by minute 1. An incident opened earlier by a later slot
    # is ended as revised (its alert went out; the row records it).
    incidents = Incident.objects.exclude(end_reason=Incident.EndReason.REVISED)
    [incident] = incidents
    assert (incident.started_at, incident.ended_at) == (T0 + dt.timedelta(minutes=1), None)
    assert Incident.objects.filter(ended_at=None).count() == 1


@pytest.mark.django_db
def test_the_api_lists_your_incidents_newest_first(client, user, other_user):
    mine = MonitorFactory(owner=user, status=Monitor.Status.UP, confirm_failures=1)
    theirs = MonitorFactory(owner=other_user, status=Monitor.Status.UP, confirm_failures=1)
    for minute, ok in enumerate([False, True, False]):
        monitors_apply_results(results=[check(mine, minute, ok), check(theirs, minute, ok)])
    client.force_login(user)

    everything = client.get("/api/v1/alerting/incidents").json()
    still_open = client.get(f"/api/v1/alerting/incidents?monitor={mine.pk}&open=true").json()
    bad = client.get("/api/v1/alerting/incidents?limit=many")

    assert [i["monitor"] for i in everything] == [mine.pk, mine.pk]
    assert [i["ended_at"] is None for i in everything] == [True, False]
    assert everything[1]["duration_seconds"] == 60
    assert [i["end_reason"] for i in everything] == ["", "recovered"]
    assert len(still_open) == 1 and still_open[0]["first_failure_kind"] == "status"
    assert bad.status_code == 400


@pytest.mark.django_db
def test_one_batch_with_an_outage_its_recovery_and_a_new_outage_keeps_them_apart():
    monitor = MonitorFactory(status=Monitor.Status.UP, confirm_failures=2)
    other = MonitorFactory(status=Monitor.Status.UP, confirm_failures=1)
    outcomes = [False, False, False, True, False, False]

    changes = monitors_apply_results(
        results=[check(monitor, m, ok) for m, ok in enumerate(outcomes)] + [check(other, 0, False)]
    )

    first, second = Incident.objects.filter(monitor=monitor).order_by("started_at")
    third = Incident.objects.get(monitor=other)
    assert sorted((c.monitor_id, c.new_status, c.incident_id) for c in changes) == sorted(
        [
            (monitor.pk, "down", first.pk),
            (monitor.pk, "up", first.pk),
            (monitor.pk, "down", second.pk),
            (other.pk, "down", third.pk),
        ]
    )
    assert (first.started_at, first.ended_at) == (
        T0 + dt.timedelta(minutes=1),
        T0 + dt.timedelta(minutes=3),
    )
    assert second.is_open and second.started_at == T0 + dt.timedelta(minutes=5)
    assert third.is_open
