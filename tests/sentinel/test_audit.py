from __future__ import annotations

import pytest
from auditlog.context import set_actor
from auditlog.models import LogEntry
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from alerting.models import NotificationChannel
from configfiles.apply import config_apply
from configfiles.scope import scope_for_owner
from monitors.models import Monitor
from monitors.services import monitor_create, monitor_update, monitors_pause, monitors_resume
from tests.factories import NotificationChannelFactory

pytestmark = pytest.mark.django_db


def entries_for(obj):
    return LogEntry.objects.get_for_object(obj).order_by("pk")


def test_it_records_who_created_changed_and_deleted_a_monitor(user):
    with set_actor(user):
        monitor = monitor_create(owner=user, name="api", url="https://127.0.0.1/")
        monitor_update(monitor=monitor, interval_seconds=120, tags=["prod"])
    created, changed, tagged = entries_for(monitor)
    assert (created.action, created.actor) == (LogEntry.Action.CREATE, user)
    assert changed.action == LogEntry.Action.UPDATE
    assert changed.changes_dict == {"interval_seconds": ["60", "120"]}
    assert tagged.changes_dict["tags"]["objects"] == ["prod"]
    pk = monitor.pk
    with set_actor(user):
        monitor.delete()
    deleted = LogEntry.objects.filter(object_pk=str(pk), action=LogEntry.Action.DELETE).get()
    assert deleted.actor == user


def test_it_leaves_the_live_state_out_of_the_trail(user):
    monitor = monitor_create(owner=user, name="api", url="https://127.0.0.1/")
    Monitor.objects.filter(pk=monitor.pk).update(status=Monitor.Status.DOWN, consecutive_failures=3)
    monitor_update(monitor=monitor, name="api v2")  # the instance still holds the old state
    change = entries_for(monitor).last()
    assert change.changes_dict == {"name": ["api", "api v2"]}


def test_it_never_records_a_channels_config_where_its_secrets_are(user):
    channel = NotificationChannelFactory(
        owner=user,
        name="hook",
        kind="webhook",
        config={"url": "https://127.0.0.1/h", "secret": "s1"},
    )
    channel.config = {"url": "https://127.0.0.1/h", "secret": "rotated"}
    channel.name = "hook 2"
    channel.save()
    texts = [str(e.changes) for e in entries_for(channel)]
    assert not any("s1" in t or "rotated" in t for t in texts)
    assert entries_for(channel).last().changes_dict == {"name": ["hook", "hook 2"]}


def test_the_api_token_user_is_the_actor(user):
    token = Token.objects.create(user=user)
    monitor = monitor_create(owner=user, name="api", url="https://127.0.0.1/")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    response = client.patch(
        f"/api/v1/monitors/{monitor.pk}/", {"interval_seconds": 300}, format="json"
    )
    assert response.status_code == 200
    change = entries_for(monitor).last()
    assert change.actor == user and change.changes_dict == {"interval_seconds": ["60", "300"]}


def test_a_configuration_apply_is_in_the_trail_with_its_objects(user):
    token = Token.objects.create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    text = (
        "version: 1\nchannels:\n  - name: ops\n    kind: email\n"
        "    config: {address: ops@example.com}\nmonitors:\n  - name: home\n    url: https://127.0.0.1/\n"
    )
    assert (
        client.post("/api/v1/config/apply", text, content_type="application/yaml").status_code
        == 200
    )
    created = LogEntry.objects.filter(action=LogEntry.Action.CREATE, actor=user)
    kinds = {e.content_type.model for e in created}
    assert {"monitor", "notificationchannel", "configapply"} <= kinds
    assert NotificationChannel.objects.filter(owner=user).count() == 1


def test_a_dry_run_leaves_no_trail(user):
    before = LogEntry.objects.count()  # the user's personal project and membership
    config_apply(
        scope=scope_for_owner(user),
        dry_run=True,
        text="version: 1\nmonitors:\n  - name: home\n    url: https://127.0.0.1/\n",
    )
    assert LogEntry.objects.count() == before


def test_admins_see_the_trail_and_the_applies(operator, user):
    with set_actor(user):
        monitor_create(owner=user, name="api", url="https://127.0.0.1/")
    client = Client()
    client.force_login(operator)
    page = client.get("/admin/auditlog/logentry/")
    assert page.status_code == 200 and b"api" in page.content
    assert client.get("/admin/configfiles/configapply/").status_code == 200


def test_it_records_pause_and_resume_in_bulk(user):
    running = monitor_create(owner=user, name="api", url="https://127.0.0.1/")
    paused = monitor_create(owner=user, name="old", url="https://127.0.0.1/old", enabled=False)
    with set_actor(user):
        assert monitors_pause(monitor_ids=[running.pk, paused.pk]) == 1
    entry = entries_for(running).last()
    assert (entry.actor, entry.changes_dict) == (user, {"enabled": ["True", "False"]})
    # The one already paused did not change: no entry.
    assert entries_for(paused).count() == 1
    monitors_resume(monitor_ids=[running.pk])
    assert entries_for(running).last().changes_dict == {"enabled": ["False", "True"]}
