"""The move into projects on a database with data: each user gets a personal project
with the owner role, and every object they had is in it; nothing is lost."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from tests.sentinel.test_migrations import migrate

BEFORE: list[tuple[str, str | None]] = [
    ("monitors", "0016_monitor_regions"),
    ("alerting", "0006_notification_resends_in_doubt"),
    ("statuspages", "0001_initial"),
    ("configfiles", "0001_initial"),
    ("projects", None),
]
STARTED = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)


def seed_owner(apps, name: str) -> dict[str, int]:
    """One of everything an owner had before projects, in the pre-project models."""
    user = apps.get_model("auth", "User").objects.create(username=name)
    monitor = apps.get_model("monitors", "Monitor").objects.create(
        owner_id=user.pk, name=f"{name} shop", url="https://shop.example/"
    )
    channel = apps.get_model("alerting", "NotificationChannel").objects.create(
        owner_id=user.pk, name="Ops", kind="email", config={"address": "ops@example.test"}
    )
    rule = apps.get_model("alerting", "AlertRule").objects.create(monitor_id=monitor.pk)
    rule.channels.add(channel)
    window = apps.get_model("alerting", "MaintenanceWindow").objects.create(
        owner_id=user.pk, name="Backups", starts_at=STARTED, ends_at=STARTED + dt.timedelta(1)
    )
    window.monitors.add(monitor)
    incident = apps.get_model("monitors", "Incident").objects.create(
        monitor_id=monitor.pk, started_at=STARTED
    )
    page = apps.get_model("statuspages", "StatusPage").objects.create(
        owner_id=user.pk, slug=f"{name}-status", title="Status", access_token="t", badge_key=name
    )
    applied = apps.get_model("configfiles", "ConfigApply").objects.create(
        owner_id=user.pk, source="command", changes="+ monitor"
    )
    return {
        "user": user.pk,
        "monitor": monitor.pk,
        "channel": channel.pk,
        "rule": rule.pk,
        "window": window.pk,
        "incident": incident.pk,
        "page": page.pk,
        "apply": applied.pk,
    }


def migrate_back() -> object:
    """Unapply projects (and each app's migration into them); the models as they were."""
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    return executor.loader.project_state([(app, name) for app, name in BEFORE if name]).apps


@pytest.mark.django_db(transaction=True)  # migrations commit; the database is flushed after
def test_every_users_objects_move_into_their_personal_project():
    before = migrate_back()
    ids = {name: seed_owner(before, name) for name in ("ann", "bob")}

    after = migrate()

    project_of = after.get_model("projects", "Project").objects.in_bulk()
    membership = after.get_model("projects", "Membership").objects
    for name, seeded in ids.items():
        project = after.get_model("projects", "Project").objects.get(personal_of_id=seeded["user"])
        assert project.name == name
        assert list(membership.filter(project=project).values_list("user_id", "role")) == [
            (seeded["user"], "owner")
        ]
        for model, key in [
            (("monitors", "Monitor"), "monitor"),
            (("alerting", "NotificationChannel"), "channel"),
            (("alerting", "MaintenanceWindow"), "window"),
            (("statuspages", "StatusPage"), "page"),
            (("configfiles", "ConfigApply"), "apply"),
        ]:
            row = after.get_model(*model).objects.get(pk=seeded[key])
            assert (row.project_id, row.owner_id) == (project.pk, seeded["user"]), model
        # Rules and incidents follow their monitor, with their relations intact.
        rule = after.get_model("alerting", "AlertRule").objects.get(pk=seeded["rule"])
        assert rule.monitor.project_id == project.pk
        assert list(rule.channels.values_list("pk", flat=True)) == [seeded["channel"]]
        window = after.get_model("alerting", "MaintenanceWindow").objects.get(pk=seeded["window"])
        assert list(window.monitors.values_list("pk", flat=True)) == [seeded["monitor"]]
        incident = after.get_model("monitors", "Incident").objects.get(pk=seeded["incident"])
        assert incident.monitor_id == seeded["monitor"]
    assert len(project_of) == 2
