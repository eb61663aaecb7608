"""Confirmation across probe regions, against the real MariaDB and Redis: results are
stored as ingest stores them (``rows_store``, whose transaction applies the live state,
incidents and notification rows), each with its region."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from kombu import Connection

from alerting.models import Notification
from monitors.batch import results_accept
from monitors.models import Incident, Monitor
from monitors.regions import (
    monitor_regions,
    regions_quorum,
    regions_status,
    slot_verdict,
    slots_token,
    slots_token_valid,
)
from telemetry.buffer import buffer_push
from telemetry.records import CheckResult
from tests.alerting.conftest import check
from tests.factories import AlertRuleFactory, MonitorFactory, WebhookChannelFactory
from tests.telemetry.conftest import (  # noqa: F401 (buffer: a fixture)
    buffer,
    buffered_results,
    store,
    table_rows,
)

pytestmark = pytest.mark.usefixtures("telemetry_tables", "buffer")

REGIONS = ["r1", "r2", "r3"]


@pytest.fixture(autouse=True)
def three_regions(settings):
    settings.SENTINEL_REGIONS = REGIONS


# Slots an hour ahead, so that no slot of a test reaches its deadline (regions that
# did not answer become unknown then); SOON is fixed when the module is imported.
SOON = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) + dt.timedelta(hours=1)


def regional(
    monitor: Monitor, minute: float, outcomes: dict[str, bool], *, base: dt.datetime = SOON
) -> list[CheckResult]:
    """One slot's results, one per region named: True for a pass."""
    at = base + dt.timedelta(minutes=minute)
    return [
        dataclasses.replace(check(monitor, 0, ok), scheduled_at=at, started_at=at, region=region)
        for region, ok in outcomes.items()
    ]


def slot(minute: float) -> dt.datetime:
    return SOON + dt.timedelta(minutes=minute)


def with_down_rule(monitor: Monitor) -> None:
    rule = AlertRuleFactory(monitor=monitor)
    rule.channels.add(WebhookChannelFactory(owner=monitor.owner))


def test_it_opens_no_incident_when_one_of_three_regions_fails_every_slot(db):
    monitor = MonitorFactory()
    with_down_rule(monitor)

    for minute in range(5):
        store(regional(monitor, minute, {"r1": False, "r2": True, "r3": True}))

    monitor.refresh_from_db()
    assert monitor.status == Monitor.Status.UP
    assert not Incident.objects.filter(monitor=monitor).exists()
    assert Notification.objects.count() == 0
    # Every region's result is stored, each under its own key.
    assert len(table_rows("check_result", "monitor_id, scheduled_at, region")) == 15


def test_it_opens_an_incident_when_two_of_three_regions_fail_and_the_alert_names_both(db):
    monitor = MonitorFactory()
    with_down_rule(monitor)

    store(regional(monitor, 0, {"r1": True, "r2": True, "r3": True}))
    for minute in (1, 2):
        store(regional(monitor, minute, {"r1": False, "r2": True, "r3": False}))

    monitor.refresh_from_db()
    assert monitor.status == Monitor.Status.DOWN
    incident = Incident.objects.get(monitor=monitor)
    assert incident.regions == "r1,r3"
    [notification] = Notification.objects.filter(event=Notification.Event.DOWN)
    assert notification.payload["incident"]["regions"] == ["r1", "r3"]
    assert "failed from r1, r3" in notification.payload["text"]


def test_a_slot_is_decided_by_the_result_that_reaches_the_quorum(db):
    monitor = MonitorFactory(confirm_failures=1)

    store(regional(monitor, 0, {"r1": False}))  # one failure of the two needed
    monitor.refresh_from_db()
    assert monitor.status == Monitor.Status.PENDING and monitor.last_checked_at is None

    store(regional(monitor, 0, {"r3": False}))  # the second, in another batch
    monitor.refresh_from_db()
    assert monitor.status == Monitor.Status.DOWN
    assert Incident.objects.get(monitor=monitor).regions == "r1,r3"


def test_a_silent_region_is_unknown_never_a_failure(db):
    monitor = MonitorFactory()
    store(regional(monitor, 0, {"r1": True, "r2": True}))

    # r3 never answers: one failure of the two that answer decides nothing.
    for minute in range(1, 6):
        store(regional(monitor, minute, {"r1": False, "r2": True}))

    monitor.refresh_from_db()
    assert monitor.status == Monitor.Status.UP
    assert monitor.last_checked_at == slot(0)
    assert not Incident.objects.filter(monitor=monitor).exists()


def test_a_slot_past_its_deadline_with_fewer_failures_than_the_quorum_passed(db):
    monitor = MonitorFactory(confirm_failures=1)
    long_ago = SOON - dt.timedelta(days=2)

    store(regional(monitor, 0, {"r1": False, "r2": True}, base=long_ago))
    store(regional(monitor, 1, {"r1": False}, base=long_ago))

    monitor.refresh_from_db()
    assert monitor.status == Monitor.Status.UP
    assert monitor.last_checked_at == long_ago + dt.timedelta(minutes=1)
    assert not Incident.objects.filter(monitor=monitor).exists()


def test_a_late_or_replayed_regional_result_changes_nothing(db):
    monitor = MonitorFactory()
    with_down_rule(monitor)
    store(regional(monitor, 0, {"r1": True, "r2": True}))
    for minute in (1, 2):
        store(regional(monitor, minute, {"r1": False, "r2": False}))
    before = (
        Monitor.objects.filter(pk=monitor.pk).values().get(),
        list(Incident.objects.values()),
        Notification.objects.count(),
    )

    # The third region's results arrive after the slots were decided, then everything
    # is replayed.
    for minute in (0, 1, 2):
        store(regional(monitor, minute, {"r3": True}))
    for minute in (0, 1, 2):
        outcome = store(regional(monitor, minute, {"r1": minute == 0, "r2": minute == 0}))
        assert outcome.stored == 0

    after = (
        Monitor.objects.filter(pk=monitor.pk).values().get(),
        list(Incident.objects.values()),
        Notification.objects.count(),
    )
    assert after == before
    assert len(table_rows("check_result", "monitor_id, scheduled_at, region")) == 9


def test_a_result_that_decides_an_old_slot_late_is_applied_in_its_place(db):
    monitor = MonitorFactory(confirm_failures=2)
    store(regional(monitor, 0, {"r1": True, "r2": True}))
    store(regional(monitor, 1, {"r1": False}))  # undecided for now
    store(regional(monitor, 2, {"r1": False, "r2": False}))
    monitor.refresh_from_db()
    assert monitor.status == Monitor.Status.UP  # one failed slot so far

    store(regional(monitor, 1, {"r2": False}))  # decides slot 1, before slot 2

    monitor.refresh_from_db()
    assert monitor.status == Monitor.Status.DOWN
    incident = Incident.objects.get(monitor=monitor)
    assert incident.started_at == slot(2)


def test_a_monitor_of_one_chosen_region_is_decided_by_its_one_result(db):
    monitor = MonitorFactory(regions=["r2"], confirm_failures=1)

    store(regional(monitor, 0, {"r2": False}))

    monitor.refresh_from_db()
    assert monitor.status == Monitor.Status.DOWN
    assert Incident.objects.get(monitor=monitor).regions == "r2"


def test_regions_confirm_sets_how_many_regions_must_fail(db):
    monitor = MonitorFactory(regions_confirm=3, confirm_failures=1)

    store(regional(monitor, 0, {"r1": False, "r2": False, "r3": True}))
    monitor.refresh_from_db()
    assert monitor.status == Monitor.Status.UP  # passed: 3 failures can no longer come

    store(regional(monitor, 1, {"r1": False, "r2": False, "r3": False}))
    monitor.refresh_from_db()
    assert monitor.status == Monitor.Status.DOWN


def test_it_refuses_unknown_regions_and_a_quorum_above_them(db):
    monitor = MonitorFactory.build(regions=["r1", "mars"])
    with pytest.raises(ValidationError) as unknown:
        monitor.full_clean()
    assert "regions" in unknown.value.message_dict
    assert "mars" in unknown.value.message_dict["regions"][0]

    monitor = MonitorFactory.build(regions=["r1", "r2"], regions_confirm=3)
    with pytest.raises(ValidationError) as too_many:
        monitor.full_clean()
    assert "regions_confirm" in too_many.value.message_dict


def test_the_verdict_rule(settings):
    at = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)

    def r(region: str, ok: bool) -> CheckResult:
        return CheckResult(1, at, at, 10 if ok else 99, ok, region=region)

    assert regions_quorum(regions=3, confirm=None) == 2
    assert regions_quorum(regions=4, confirm=None) == 3
    assert regions_quorum(regions=2, confirm=5) == 2
    assert slot_verdict([r("r1", False)], regions=3, quorum=2) is None
    assert slot_verdict([r("r1", False), r("r2", True)], regions=3, quorum=2) is None
    failed = slot_verdict([r("r3", False), r("r1", False)], regions=3, quorum=2)
    assert failed is not None and not failed.ok and failed.region == "r1,r3"
    passed = slot_verdict([r("r1", True), r("r2", True)], regions=3, quorum=2)
    assert passed is not None and passed.ok
    assert monitor_regions([]) == ("r1", "r2", "r3")
    assert monitor_regions(["r3", "gone"]) == ("r3",)


def test_a_token_binds_the_region_and_its_slots(settings):
    pairs = [[1, 1000], [2, 2000]]
    token = slots_token(region="r1", pairs=pairs)

    assert slots_token_valid(region="r1", pairs=pairs, token=token)
    assert not slots_token_valid(region="r2", pairs=pairs, token=token)
    assert not slots_token_valid(region="r1", pairs=[[1, 1000], [3, 2000]], token=token)


def test_a_region_that_sent_nothing_is_silent_and_one_that_did_is_not(db):
    # No queue of these regions on the broker (another test may have declared them):
    # their workers are unknown, so results alone decide.
    with Connection(settings.CELERY_BROKER_URL) as conn:
        channel: Any = conn.default_channel
        for region in REGIONS:
            channel.queue_delete(f"probes.{region}")
    monitor = MonitorFactory()
    buffer_push(results=regional(monitor, 0, {"r1": True, "r2": True}))

    status = {region.name: region for region in regions_status()}

    assert not status["r1"].silent and status["r1"].seen_seconds_ago is not None
    assert status["r3"].silent and status["r3"].seen_seconds_ago is None


def test_a_region_whose_queue_has_no_worker_is_silent_even_with_recent_results(db):
    with Connection(settings.CELERY_BROKER_URL) as conn:
        channel: Any = conn.default_channel
        channel.queue_declare(
            "probes.r1",
            durable=True,
            auto_delete=False,
            arguments={"x-dead-letter-exchange": "sentinel.dead"},
        )
        monitor = MonitorFactory()
        buffer_push(results=regional(monitor, 0, {"r1": True}))

        r1 = next(region for region in regions_status() if region.name == "r1")

        channel.queue_delete("probes.r1")
    assert r1.workers == 0 and r1.seen_seconds_ago is not None and r1.silent


def test_the_central_consumer_stores_only_the_slots_a_region_was_sent(db, redis_client):

    handed = regional(MonitorFactory(), 0, {"r1": False})[0]
    other = regional(MonitorFactory(), 0, {"r1": False})[0]
    slots = [[handed.monitor_id, round(handed.scheduled_at.timestamp() * 1000)]]
    token = slots_token(region="r1", pairs=slots)

    accepted = results_accept(
        region="r1",
        slots=slots,
        token=token,
        rows=[
            handed.to_wire(),  # sent to r1: stored
            other.to_wire(),  # a monitor r1 was not sent
            dataclasses.replace(handed, region="r2").to_wire(),  # r1 posing as r2
        ],
    )
    forged = results_accept(region="r2", slots=slots, token=token, rows=[handed.to_wire()])

    assert (accepted, forged) == (1, 0)
    assert buffered_results(redis_client) == [handed]


def test_a_heartbeat_is_judged_by_its_one_result_whatever_the_regions(db):
    monitor = MonitorFactory(kind=Monitor.Kind.HEARTBEAT, url="", confirm_failures=1)

    store(regional(monitor, 0, {"local": False}))

    monitor.refresh_from_db()
    assert monitor.status == Monitor.Status.DOWN
