"""A heartbeat on the dashboard and in the API: its ping URLs, state and last pings with
their signal, body and run time; the form shows a heartbeat's own fields."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from monitors.forms import MonitorForm
from monitors.heartbeats import ping_key_of
from monitors.models import Monitor
from monitors.services import monitor_create
from tests.monitors.heartbeat_helpers import ingest, ping

pytestmark = pytest.mark.usefixtures("telemetry_tables")


@pytest.fixture
def heartbeat(user, redis_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        monitor = monitor_create(
            owner=user, name="db backup", kind="heartbeat", heartbeat_slug="db-backup"
        )
    path = f"/ping/{monitor.heartbeat_uuid}"
    assert ping(f"{path}/start", query="rid=r1") == 200
    time.sleep(0.01)
    assert ping(path, method="POST", body=b"dumped 42 tables\n<script>", query="rid=r1") == 200
    assert ping(f"{path}/3") == 200
    ingest()
    return monitor


def test_it_shows_a_heartbeats_urls_state_and_last_pings(client, user, heartbeat):
    client.force_login(user)
    page = client.get(f"/dashboard/monitors/{heartbeat.pk}/").content.decode()
    assert f"http://testserver/ping/{heartbeat.heartbeat_uuid}" in page
    assert f"http://testserver/ping/{ping_key_of(owner_id=user.pk)}/db-backup" in page
    assert 'heartbeat-state">down<' in page  # exit status 3, the newest ping
    assert "dumped 42 tables\n&lt;script&gt;" in page  # the body, escaped
    assert "exit 3" in page and "rid r1" in page and "Check now" not in page


def test_it_lists_a_heartbeats_pings_in_the_api(user, heartbeat):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    pings = api.get(f"/api/v1/monitors/{heartbeat.pk}/pings/").json()
    assert [(p["kind"], p["exit_status"]) for p in pings] == [
        ("exit", 3),
        ("success", None),
        ("start", None),
    ]
    assert pings[1]["body"] == "dumped 42 tables\n<script>" and pings[1]["duration_ms"] >= 10
    detail = api.get(f"/api/v1/monitors/{heartbeat.pk}/").json()
    assert detail["heartbeat_state"] == "down" and detail["kind"] == "heartbeat"
    assert api.get(f"/api/v1/monitors/{heartbeat.pk}/pings/?limit=0").status_code == 400


def test_it_answers_404_for_another_owners_heartbeat_pings(other_user, heartbeat):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=other_user).key}")
    assert api.get(f"/api/v1/monitors/{heartbeat.pk}/pings/").status_code == 404


def test_it_marks_the_form_rows_of_a_heartbeat(db):
    rows = {field.name: classes for field, classes in MonitorForm().rows()}
    assert "for-heartbeat" in rows["heartbeat_cron"] and "for-http" not in rows["heartbeat_cron"]
    assert "for-heartbeat" not in rows["url"] and "for-http" in rows["url"]


def test_it_creates_a_heartbeat_from_the_dashboard_form(client, user, redis_client):
    client.force_login(user)
    form = {
        "name": "cron job",
        "kind": "heartbeat",
        "url": "",
        "heartbeat_cron": "*/5 * * * *",
        "heartbeat_tz": "Europe/Berlin",
        "heartbeat_period_seconds": 86400,
        "heartbeat_grace_seconds": 300,
        "interval_seconds": 60,
        "timeout_seconds": 10,
        "confirm_failures": 2,
        "recover_successes": 1,
        "expected_status_codes": "200-299",
        "method": "GET",
        "keyword_mode": "present",
        "headers": "{}",
    }
    response = client.post("/dashboard/monitors/new/", form)
    assert response.status_code == 302, response.content.decode()[-2000:]
    monitor = Monitor.objects.get(name="cron job")
    assert monitor.heartbeat_cron == "*/5 * * * *" and monitor.heartbeat_grace_seconds == 300
    bad = client.post(
        "/dashboard/monitors/new/", {**form, "name": "x", "heartbeat_grace_seconds": 0}
    )
    assert bad.status_code == 200 and "at least a minute" in bad.content.decode()


def test_it_shows_a_late_heartbeat_as_late_in_the_overview(client, user, heartbeat):
    Monitor.objects.filter(pk=heartbeat.pk).update(
        status="up", heartbeat_deadline_at=timezone.now() + dt.timedelta(seconds=30)
    )  # due 30 minutes ago, 30 s of the hour's grace left
    client.force_login(user)
    page = client.get("/dashboard/").content.decode()
    assert 'status-late">Late<' in page
