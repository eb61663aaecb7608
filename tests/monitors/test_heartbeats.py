"""Heartbeat monitors end to end against the real Redis and MariaDB: pings through the
web tier's WSGI application into the buffer, ingest, the live state, and the
per-minute pass for missed pings (time passed explicitly)."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from alerting.models import Notification
from monitors.heartbeats import (
    ROUTES_KEY,
    heartbeat_routes_rebuild,
    heartbeats_missed,
    heartbeats_pings_apply,
    ping_key_of,
)
from monitors.models import Incident, Monitor
from monitors.services import monitor_create, monitors_pause
from telemetry.buffer import buffer_depth
from telemetry.ingest import ingest_batch
from telemetry.pings import PingRow
from tests.factories import AlertRuleFactory, WebhookChannelFactory
from tests.monitors.heartbeat_helpers import ingest, ping, stored_pings, stored_results
from tests.telemetry.conftest import buffered_results

pytestmark = pytest.mark.usefixtures("telemetry_tables", "buffer")


@pytest.fixture
def buffer(redis_client, settings, tmp_path):
    settings.TELEMETRY_SPOOL_DIR = str(tmp_path / "spool")
    from telemetry.ingest import store

    store._known_monitors.clear()
    return redis_client


@pytest.fixture
def heartbeat(user, django_capture_on_commit_callbacks):
    """A heartbeat with a one-minute period and grace, its routes written on commit."""
    with django_capture_on_commit_callbacks(execute=True):
        return monitor_create(
            owner=user,
            name="nightly backup",
            kind="heartbeat",
            heartbeat_slug="backup",
            heartbeat_period_seconds=60,
            heartbeat_grace_seconds=60,
        )


def url(monitor: Monitor, signal: str = "") -> str:
    return f"/ping/{monitor.heartbeat_uuid}" + (f"/{signal}" if signal else "")


def fresh(monitor: Monitor) -> Monitor:
    return Monitor.objects.get(pk=monitor.pk)


@pytest.mark.parametrize("method", ["GET", "POST", "HEAD"])
def test_it_counts_a_success_ping_of_each_method(heartbeat, method):
    assert fresh(heartbeat).heartbeat_state() == "new"
    before = dt.datetime.now(dt.UTC) - dt.timedelta(milliseconds=1)  # stored in whole ms
    assert ping(url(heartbeat), method=method) == 200
    ingest()
    monitor = fresh(heartbeat)
    assert monitor.status == "up" and monitor.heartbeat_state() == "up"
    assert before <= last_ping_of(monitor) <= dt.datetime.now(dt.UTC)
    assert monitor.heartbeat_deadline_at == last_ping_of(monitor) + dt.timedelta(seconds=120)
    assert stored_pings(heartbeat.pk) == [("success", None, "", None, method, "", 0)]
    assert stored_results(heartbeat.pk) == [(True, None, 0)]


def test_it_measures_the_run_time_from_start_to_success(heartbeat):
    assert ping(url(heartbeat, "start")) == 200
    time.sleep(0.02)  # a run of at least 20 ms, measured by the web tier's clock
    assert ping(url(heartbeat)) == 200
    ingest()
    (start, success) = stored_pings(heartbeat.pk)
    assert start[0] == "start" and start[3] is None
    assert success[0] == "success" and success[3] >= 20
    assert stored_results(heartbeat.pk) == [(True, None, success[3])]
    assert fresh(heartbeat).status == "up"  # a start alone changes nothing, the end does


def test_it_pairs_overlapping_runs_by_run_id(heartbeat):
    assert ping(url(heartbeat, "start"), query="rid=a") == 200
    time.sleep(0.03)
    assert ping(url(heartbeat, "start"), query="rid=b") == 200
    assert ping(url(heartbeat), query="rid=b") == 200
    assert ping(url(heartbeat), query="rid=a") == 200
    ingest()
    runs = {rid: ms for kind, _, rid, ms, *_ in stored_pings(heartbeat.pk) if kind == "success"}
    assert runs["a"] >= 30 and runs["b"] < runs["a"]


def test_it_turns_down_on_a_fail_ping_and_up_on_the_next_success(heartbeat):
    AlertRuleFactory(monitor=heartbeat, threshold=1).channels.add(
        WebhookChannelFactory(owner=heartbeat.owner)
    )
    assert ping(url(heartbeat, "fail")) == 200
    ingest()
    assert fresh(heartbeat).status == "down"
    incident = Incident.objects.get(monitor=heartbeat)
    assert incident.is_open and incident.first_failure_kind == "job_failed"
    assert Notification.objects.filter(monitor=heartbeat).count() == 1  # the down alert
    assert ping(url(heartbeat)) == 200
    ingest()
    assert fresh(heartbeat).status == "up"
    assert not Incident.objects.get(monitor=heartbeat).is_open


@pytest.mark.parametrize(
    ("status", "ok", "failure"),
    [("0", True, None), ("1", False, "job_failed"), ("255", False, "job_failed")],
)
def test_it_takes_an_exit_status_as_the_verdict(heartbeat, status, ok, failure):
    assert ping(url(heartbeat, status)) == 200
    ingest()
    assert stored_results(heartbeat.pk) == [(ok, failure, 0)]
    assert stored_pings(heartbeat.pk)[0][:2] == ("exit", int(status))
    assert fresh(heartbeat).status == ("up" if ok else "down")


@pytest.mark.parametrize("signal", ["256", "1000", "-1", "restart"])
def test_it_refuses_a_signal_that_is_none(heartbeat, signal):
    assert ping(url(heartbeat, signal)) in (400, 404)
    assert buffer_depth() == 0


def test_it_keeps_a_log_ping_without_changing_the_state(heartbeat):
    assert ping(url(heartbeat, "log"), method="POST", body=b"disk 91% full") == 200
    ingest()
    assert stored_pings(heartbeat.pk) == [("log", None, "", None, "POST", "disk 91% full", 0)]
    assert stored_results(heartbeat.pk) == []
    monitor = fresh(heartbeat)
    assert monitor.heartbeat_state() == "new" and monitor.heartbeat_deadline_at is None


def test_it_answers_the_ping_key_and_slug_form(heartbeat):
    key = ping_key_of(owner_id=heartbeat.owner_id)
    assert ping(f"/ping/{key}/backup") == 200
    assert ping(f"/ping/{key}/backup/start") == 200
    assert ping(f"/ping/{key}/other") == 404
    assert ping("/ping/not-a-key/backup") == 404
    ingest()
    assert [p[0] for p in stored_pings(heartbeat.pk)] == ["success", "start"]


@pytest.mark.parametrize(
    "path",
    ["/ping/0c4e8a47-2b8e-4f41-a3f3-3e5e0c9e6a11", "/ping/", "/ping/x", "/ping/a/b/c/d"],
)
def test_it_answers_404_for_an_unknown_ping_url_and_stores_nothing(heartbeat, path):
    assert ping(path) == 404
    assert buffer_depth() == 0


def test_it_rate_limits_each_ping_url(
    heartbeat, settings, user, django_capture_on_commit_callbacks
):
    settings.HEARTBEAT_PING_RATE_LIMIT = 3
    with django_capture_on_commit_callbacks(execute=True):
        other = monitor_create(owner=user, name="other", kind="heartbeat")
    assert [ping(url(heartbeat)) for _ in range(4)] == [200, 200, 200, 429]
    assert ping(url(other)) == 200  # per URL: another one is not limited
    assert buffer_depth() == 4


def test_it_keeps_a_body_up_to_the_limit(heartbeat, settings):
    settings.HEARTBEAT_PING_BODY_MAX_BYTES = 10
    assert ping(url(heartbeat), method="POST", body=b"0123456789abcdef") == 200
    assert ping(url(heartbeat, "log"), method="POST", body=b"short") == 200
    ingest()
    bodies = [(p[5], p[6]) for p in stored_pings(heartbeat.pk)]
    assert bodies == [("0123456789", 1), ("short", 0)]


def test_it_answers_503_and_stores_nothing_while_redis_is_away(heartbeat, settings):
    working = settings.REDIS_URL
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    try:
        assert ping(url(heartbeat)) == 503
    finally:
        settings.REDIS_URL = working
    assert buffer_depth() == 0
    assert ping(url(heartbeat)) == 200


def test_it_keeps_pings_in_the_buffer_while_ingest_is_down(heartbeat):
    assert ping(url(heartbeat)) == 200
    assert ping(url(heartbeat, "log"), method="POST", body=b"later") == 200
    # No ingest yet: the pings wait in Redis, MySQL has nothing.
    assert buffer_depth() == 2 and stored_pings(heartbeat.pk) == []
    ingest()  # ingest is back
    assert [p[0] for p in stored_pings(heartbeat.pk)] == ["success", "log"]
    assert buffer_depth() == 0 and fresh(heartbeat).status == "up"


def test_it_rebuilds_the_routes_when_redis_lost_them(heartbeat, redis_client):
    redis_client.delete(ROUTES_KEY)
    assert ping(url(heartbeat)) == 200
    assert redis_client.hexists(ROUTES_KEY, str(heartbeat.heartbeat_uuid))
    assert ping("/ping/0c4e8a47-2b8e-4f41-a3f3-3e5e0c9e6a11") == 404
    assert heartbeat_routes_rebuild() == 2  # the UUID and the slug


def test_it_forgets_the_ping_url_of_a_deleted_heartbeat(
    heartbeat, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        Monitor.objects.get(pk=heartbeat.pk).delete()
    assert ping(url(heartbeat)) == 404


def test_it_resumes_a_paused_heartbeat_on_its_next_ping(heartbeat):
    monitors_pause(monitor_ids=[heartbeat.pk])
    assert fresh(heartbeat).heartbeat_state() == "paused"
    assert ping(url(heartbeat, "start")) == 200
    ingest()
    assert fresh(heartbeat).status == "paused"  # a start is no verdict
    assert ping(url(heartbeat)) == 200
    ingest()
    monitor = fresh(heartbeat)
    assert monitor.enabled and monitor.status == "up" and monitor.heartbeat_deadline_at


# --- missed pings: the per-minute pass --------------------------------------------------


def last_ping_of(monitor: Monitor) -> dt.datetime:
    assert monitor.heartbeat_last_ping_at is not None
    return monitor.heartbeat_last_ping_at


def deadline_of(monitor: Monitor) -> dt.datetime:
    assert monitor.heartbeat_deadline_at is not None
    return monitor.heartbeat_deadline_at


def pinged(monitor: Monitor) -> Monitor:
    assert ping(url(monitor)) == 200
    ingest()
    return fresh(monitor)


def test_it_shows_late_inside_the_grace_and_goes_down_once_it_runs_out(heartbeat):
    AlertRuleFactory(monitor=heartbeat, threshold=1).channels.add(
        WebhookChannelFactory(owner=heartbeat.owner)
    )
    monitor = pinged(heartbeat)
    last = last_ping_of(monitor)
    assert monitor.heartbeat_state(now=last + dt.timedelta(seconds=59)) == "up"
    assert monitor.heartbeat_state(now=last + dt.timedelta(seconds=61)) == "late"
    # Inside the grace: nothing to do.
    assert heartbeats_missed(now=last + dt.timedelta(seconds=119)).missed == 0
    assert buffer_depth() == 0
    # The grace has run out: one "missed" result, at the deadline.
    report = heartbeats_missed(now=last + dt.timedelta(seconds=121))
    assert report.missed == 1
    ingest()
    monitor = fresh(heartbeat)
    assert monitor.status == "down" and monitor.heartbeat_deadline_at is None
    incident = Incident.objects.get(monitor=heartbeat)
    assert incident.started_at == last + dt.timedelta(seconds=120)
    assert incident.first_failure_kind == "missed"
    assert stored_results(heartbeat.pk)[-1] == (False, "missed", 0)
    # Down and waiting for a ping: the next pass finds nothing.
    assert heartbeats_missed(now=last + dt.timedelta(seconds=300)).missed == 0
    assert ping(url(heartbeat), at=last + dt.timedelta(seconds=310)) == 200
    ingest()
    assert fresh(heartbeat).status == "up"
    assert not Incident.objects.get(monitor=heartbeat).is_open


def test_it_pushes_the_same_missed_result_when_the_pass_runs_twice(heartbeat):
    monitor = pinged(heartbeat)
    later = deadline_of(monitor) + dt.timedelta(seconds=5)
    heartbeats_missed(now=later)
    # A second pass before the clear was seen (e.g. a redelivered task): same slot.
    Monitor.objects.filter(pk=monitor.pk).update(
        heartbeat_deadline_at=monitor.heartbeat_deadline_at
    )
    heartbeats_missed(now=later)
    ingest()
    assert stored_results(heartbeat.pk) == [(True, None, 0), (False, "missed", 0)]
    assert Incident.objects.filter(monitor=heartbeat).count() == 1


def test_it_does_not_call_missed_a_heartbeat_whose_ping_waits_in_the_buffer(heartbeat):
    monitor = pinged(heartbeat)
    assert ping(url(heartbeat)) == 200  # taken by the web tier, not stored yet
    # The pass as the deadline passes: the ping in the buffer has moved it on.
    report = heartbeats_missed(now=deadline_of(monitor))
    assert (report.missed, report.pinged) == (0, 1)
    ingest()
    assert fresh(heartbeat).status == "up"


def test_it_leaves_paused_and_new_heartbeats_alone(heartbeat, user):
    new = monitor_create(owner=user, name="never pinged", kind="heartbeat")
    monitor = pinged(heartbeat)
    monitors_pause(monitor_ids=[heartbeat.pk])
    far = deadline_of(monitor) + dt.timedelta(days=3)
    assert heartbeats_missed(now=far).missed == 0
    assert fresh(new).heartbeat_state() == "new" and fresh(heartbeat).heartbeat_state() == "paused"


def test_it_moves_the_deadline_when_the_schedule_changes(heartbeat):
    monitor = pinged(heartbeat)
    monitor.heartbeat_grace_seconds = 600
    monitor.save()
    expected = last_ping_of(monitor) + dt.timedelta(seconds=660)
    assert fresh(heartbeat).heartbeat_deadline_at == expected


def test_it_never_hands_a_heartbeat_to_the_probe_dispatch(heartbeat):
    from monitors.dispatch import dispatch_due

    published: list = []
    dispatch_due(publish=published.extend)
    assert all(slot.monitor_id != heartbeat.pk for slot in published)
    monitors_pause(monitor_ids=[heartbeat.pk])
    Monitor.objects.filter(pk=heartbeat.pk).resume()
    dispatch_due(publish=published.extend)
    assert all(slot.monitor_id != heartbeat.pk for slot in published)


def test_it_stores_a_cron_heartbeats_deadline_in_its_time_zone(user):
    monitor = monitor_create(
        owner=user,
        name="berlin",
        kind="heartbeat",
        heartbeat_cron="30 2 * * *",
        heartbeat_tz="Europe/Berlin",
        heartbeat_grace_seconds=600,
    )
    last = dt.datetime(2026, 3, 28, 1, 30, tzinfo=dt.UTC)  # 02:30 CET, Saturday
    # 02:30 does not exist on Sunday the 29th (clocks jump 02:00 -> 03:00 CEST): it
    # fires at 03:00 CEST = 01:00 UTC; the grace runs from there.
    assert monitor.heartbeat_deadline_after(last) == dt.datetime(2026, 3, 29, 1, 10, tzinfo=dt.UTC)


def test_it_fires_a_cron_heartbeat_in_both_hours_of_the_autumn_change(user):
    monitor = monitor_create(
        owner=user,
        name="hourly",
        kind="heartbeat",
        heartbeat_cron="0 * * * *",
        heartbeat_tz="Europe/Berlin",
        heartbeat_grace_seconds=60,
    )
    # 25 October 2026, 02:00 CEST (00:00 UTC): the clocks go back at 03:00 CEST to
    # 02:00 CET, so 02:00 comes twice; the next run after the first is the second.
    first = dt.datetime(2026, 10, 25, 0, 0, tzinfo=dt.UTC)
    after = monitor.heartbeat_deadline_after(first) - dt.timedelta(seconds=60)
    assert after == dt.datetime(2026, 10, 25, 1, 0, tzinfo=dt.UTC)  # 02:00 CET


def test_it_calls_a_cron_heartbeat_missed_past_the_spring_gap(heartbeat, redis_client):
    Monitor.objects.filter(pk=heartbeat.pk).update(
        status="up",
        heartbeat_cron="30 2 * * *",
        heartbeat_tz="Europe/Berlin",
        heartbeat_grace_seconds=600,
    )
    # A ping stored at Saturday 02:30 CET (what ingest hands over; a result this old
    # would be outside the stored window, so the state is set above).
    saturday_us = int(dt.datetime(2026, 3, 28, 1, 30, tzinfo=dt.UTC).timestamp() * 1e6)
    row: PingRow = (heartbeat.pk, None, saturday_us, "success", None, "", "GET", "", "", "", False)
    heartbeats_pings_apply(pings=[row])
    monitor = fresh(heartbeat)
    # Due at 03:00 CEST on Sunday (02:30 does not exist that day), down 10 minutes later.
    assert monitor.heartbeat_deadline_at == dt.datetime(2026, 3, 29, 1, 10, tzinfo=dt.UTC)
    assert monitor.heartbeat_state(now=dt.datetime(2026, 3, 29, 0, 59, tzinfo=dt.UTC)) == "up"
    assert monitor.heartbeat_state(now=dt.datetime(2026, 3, 29, 1, 5, tzinfo=dt.UTC)) == "late"
    assert heartbeats_missed(now=dt.datetime(2026, 3, 29, 1, 9, tzinfo=dt.UTC)).missed == 0
    assert heartbeats_missed(now=dt.datetime(2026, 3, 29, 1, 10, 30, tzinfo=dt.UTC)).missed == 1
    (missed,) = buffered_results(redis_client)
    assert (missed.scheduled_at, missed.ok, missed.failure) == (
        dt.datetime(2026, 3, 29, 1, 10, tzinfo=dt.UTC),
        False,
        "missed",
    )


def test_it_keeps_two_verdicts_sent_in_the_same_millisecond(heartbeat):
    at = dt.datetime.now(dt.UTC)
    assert ping(url(heartbeat), at=at) == 200
    assert ping(url(heartbeat, "fail"), at=at) == 200
    ingest()
    assert stored_results(heartbeat.pk) == [(True, None, 0), (False, "job_failed", 0)]
    assert fresh(heartbeat).status == "down"  # the later one decides


def test_it_has_nothing_to_check_now_for_a_heartbeat(heartbeat):
    from monitors.services import monitors_check_now

    assert monitors_check_now(monitor_ids=[heartbeat.pk]) == 0


def test_it_stores_and_acknowledges_a_batch_of_ten_thousand_pings(heartbeat, settings):
    settings.HEARTBEAT_PING_RATE_LIMIT = 20_000
    # One stream entry per ping: more entries in one batch than Lua's stack holds.
    for _ in range(10_000):
        assert ping(url(heartbeat, "log")) == 200
    assert ingest_batch(consumer="tests", batch_size=10_000).stored == 0  # logs: no results
    assert buffer_depth() == 0
    assert len(stored_pings(heartbeat.pk)) == 10_000
