"""The migrations that moved models between apps (AlertRule and NotificationChannel to
alerting, the incident to monitors) run forward and back on a database with rows in
it, and every row is still there, related as before."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [
    ("monitors", "0004_alert_rule_latency_window"),
    ("alerting", "0002_notification_claim_token"),
]
AFTER = [
    ("monitors", "0005_incident_moves_here_alert_rules_leave"),
    ("alerting", "0004_incident_moves_to_monitors"),
]
STARTED = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)


def migrate(targets=None):
    """Migrate to ``targets``; None: to the latest migrations, as the suite expects."""
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    targets = targets or executor.loader.graph.leaf_nodes()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def seed(apps) -> dict[str, int]:
    """One of everything that crosses the move, in the pre-move models."""
    user = apps.get_model("auth", "User").objects.create(username="owner")
    monitor = apps.get_model("monitors", "Monitor").objects.create(
        owner_id=user.pk, name="Shop", url="https://shop.example/"
    )
    channel = apps.get_model("monitors", "NotificationChannel").objects.create(
        owner_id=user.pk, name="Ops", kind="webhook", config={"url": "https://hooks.example/"}
    )
    rule = apps.get_model("monitors", "AlertRule").objects.create(
        monitor_id=monitor.pk, kind="latency", threshold=800
    )
    rule.channels.add(channel)
    apps.get_model("alerting", "AlertRuleState").objects.create(rule_id=rule.pk, latency_streak=2)
    apps.get_model("alerting", "ChannelHealth").objects.create(
        channel_id=channel.pk, consecutive_failures=1
    )
    incident = apps.get_model("alerting", "Incident").objects.create(
        monitor_id=monitor.pk, started_at=STARTED, checks_failed=3, open_monitor_id=monitor.pk
    )
    notification = apps.get_model("alerting", "Notification").objects.create(
        channel_id=channel.pk,
        monitor_id=monitor.pk,
        incident_id=incident.pk,
        event="down",
        dedup_key=f"incident:{incident.pk}:down",
        payload={"event": "down"},
    )
    return {
        "monitor": monitor.pk,
        "channel": channel.pk,
        "rule": rule.pk,
        "incident": incident.pk,
        "notification": notification.pk,
    }


def assert_all_there(apps, ids: dict[str, int], *, rules_in: str, incidents_in: str) -> None:
    rule = apps.get_model(rules_in, "AlertRule").objects.get(pk=ids["rule"])
    assert (rule.monitor_id, rule.kind, rule.threshold) == (ids["monitor"], "latency", 800)
    assert list(rule.channels.values_list("pk", flat=True)) == [ids["channel"]]
    assert apps.get_model("alerting", "AlertRuleState").objects.get(pk=rule.pk).latency_streak == 2
    channel = apps.get_model(rules_in, "NotificationChannel").objects.get(pk=ids["channel"])
    assert channel.config == {"url": "https://hooks.example/"}
    health = apps.get_model("alerting", "ChannelHealth").objects.get(pk=channel.pk)
    assert health.consecutive_failures == 1
    incident = apps.get_model(incidents_in, "Incident").objects.get(pk=ids["incident"])
    assert (incident.monitor_id, incident.started_at, incident.checks_failed) == (
        ids["monitor"],
        STARTED,
        3,
    )
    notification = apps.get_model("alerting", "Notification").objects.get(pk=ids["notification"])
    assert (notification.channel_id, notification.incident_id) == (ids["channel"], incident.pk)


@pytest.mark.django_db(transaction=True)  # migrations commit; the database is flushed after
def test_the_model_moves_keep_every_row_forward_and_back():
    from django.contrib.contenttypes.models import ContentType

    ids = seed(migrate(BEFORE))
    ContentType.objects.get_or_create(app_label="monitors", model="alertrule")
    ContentType.objects.get_or_create(app_label="alerting", model="incident")

    after = migrate(AFTER)
    assert_all_there(after, ids, rules_in="alerting", incidents_in="monitors")
    labels = set(ContentType.objects.values_list("app_label", "model"))
    assert ("alerting", "alertrule") in labels and ("monitors", "alertrule") not in labels
    assert ("monitors", "incident") in labels and ("alerting", "incident") not in labels

    before = migrate(BEFORE)
    assert_all_there(before, ids, rules_in="monitors", incidents_in="alerting")
    assert ("monitors", "alertrule") in set(ContentType.objects.values_list("app_label", "model"))

    migrate()  # leave the schema as the rest of the suite expects it: every app at its latest


@pytest.mark.django_db(transaction=True)
def test_maintenance_windows_from_before_time_zones_stay_utc(settings):
    # New windows start in the site's zone; the old ones must not move an hour.
    settings.SENTINEL_TIME_ZONE = "Europe/Berlin"
    before = migrate([("alerting", "0004_incident_moves_to_monitors")])
    owner = before.get_model("auth", "User").objects.create(username="owner")
    old = before.get_model("alerting", "MaintenanceWindow").objects.create(
        owner_id=owner.pk,
        name="Backups",
        starts_at=STARTED,
        ends_at=STARTED + dt.timedelta(hours=1),
        repeat="weekly",
    )

    after = migrate()

    windows = after.get_model("alerting", "MaintenanceWindow")
    assert windows.objects.get(pk=old.pk).time_zone == "UTC"
    project = after.get_model("projects", "Project").objects.get(personal_of_id=owner.pk)
    new = windows.objects.create(
        owner_id=owner.pk,
        project_id=project.pk,
        name="New",
        starts_at=STARTED,
        ends_at=STARTED + dt.timedelta(hours=1),
    )
    assert new.time_zone == "Europe/Berlin"


@pytest.mark.django_db(transaction=True)  # migrations commit; the database is flushed after
def test_monitors_paused_while_down_before_0012_have_their_incident_ended():
    before = [("monitors", "0011_ping_monitors")]
    apps = migrate(before)
    user = apps.get_model("auth", "User").objects.create(username="owner")
    monitor = apps.get_model("monitors", "Monitor")
    paused = monitor.objects.create(owner_id=user.pk, name="Paused", url="https://a.example/")
    running = monitor.objects.create(owner_id=user.pk, name="Down", url="https://b.example/")
    monitor.objects.filter(pk=paused.pk).update(enabled=False, status="paused")
    incident = apps.get_model("monitors", "Incident")
    for m in (paused, running):
        incident.objects.create(monitor_id=m.pk, started_at=STARTED, open_monitor_id=m.pk)

    after = migrate([("monitors", "0012_paused_monitors_end_their_incidents")])

    rows = {i.monitor_id: i for i in after.get_model("monitors", "Incident").objects.all()}
    assert (rows[paused.pk].open_monitor_id, rows[paused.pk].end_reason) == (None, "paused")
    assert rows[paused.pk].ended_at is not None and rows[paused.pk].duration_seconds > 0
    assert rows[running.pk].open_monitor_id == running.pk  # still down, still open
    executor = MigrationExecutor(connection)
    migrate(executor.loader.graph.leaf_nodes())
