"""The alerting resources of the API: channels, alert rules, maintenance windows and
incidents. CRUD through the services, the models' validation naming the field, the
one access rule (another owner's object is a 404, and naming one in a rule or window
is a 400 naming the field), filters and pages, and channel secrets never answered."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from rest_framework.test import APIClient

from alerting.models import (
    AlertRule,
    ChannelHealth,
    MaintenanceWindow,
    Notification,
    NotificationChannel,
)
from tests.alerting.test_api import incident
from tests.api_clients import RecordingClient, token_client
from tests.factories import (
    AlertRuleFactory,
    MaintenanceWindowFactory,
    MonitorFactory,
    NotificationChannelFactory,
    WebhookChannelFactory,
)

pytestmark = pytest.mark.django_db

SECRET = "sig-Zq81-never-shown"
URL_TOKEN = "T0K3N-in-the-path"
T0 = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)  # incidents' STARTED


@pytest.fixture(autouse=True)
def _empty_cache(redis_client):
    """Throttle counters live in Redis, emptied per test."""


@pytest.fixture
def api(user):
    return token_client(user)


def webhook_body(url: str = f"https://hooks.example.test/{URL_TOKEN}?key=abc", **changes):
    return {
        "name": "ops hook",
        "kind": "webhook",
        "config": {"url": url, "secret": SECRET},
        **changes,
    }


def assert_no_secret(*clients: RecordingClient) -> None:
    bodies = [body for client in clients for body in client.bodies]
    assert bodies
    for body in bodies:
        assert SECRET.encode() not in body
        assert URL_TOKEN.encode() not in body


# --- channels -------------------------------------------------------------------------


def test_it_creates_channels_and_never_returns_their_secrets(api, user):
    created = api.post("/api/v1/channels/", webhook_body(), format="json")
    slack = api.post(
        "/api/v1/channels/",
        {"name": "chat", "kind": "slack", "config": {"url": f"https://slack.test/{URL_TOKEN}"}},
        format="json",
    )
    apprise = api.post(
        "/api/v1/channels/",
        {"name": "tg", "kind": "apprise", "config": {"url": f"tgram://{URL_TOKEN}/42"}},
        format="json",
    )

    assert created.status_code == 201, created.content
    body = created.json()
    assert "config" not in body
    assert body["target"] == "https://hooks.example.test/…" and body["has_secret"] is True
    assert slack.json()["target"] == "https://slack.test/…"
    assert apprise.json()["target"] == "tgram://…"
    channel = NotificationChannel.objects.get(pk=body["id"])
    assert channel.owner == user and channel.config["secret"] == SECRET
    api.get("/api/v1/channels/")
    api.get(f"/api/v1/channels/{channel.pk}/")
    api.patch(f"/api/v1/channels/{channel.pk}/", {"name": "renamed"}, format="json")
    assert_no_secret(api)


def test_an_email_channel_shows_its_address(api):
    response = api.post(
        "/api/v1/channels/",
        {"name": "me", "kind": "email", "config": {"address": "ops@example.test"}},
        format="json",
    )

    assert response.status_code == 201
    assert response.json()["target"] == "ops@example.test"
    assert response.json()["has_secret"] is False


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (webhook_body(url="ftp://x.example.test/"), "config"),
        ({"name": "m", "kind": "email", "config": {"address": "not-an-address"}}, "config"),
        ({"name": "m", "kind": "slack", "config": {}}, "config"),
        ({"name": "m", "kind": "pigeon", "config": {}}, "kind"),
        ({"name": "", "kind": "slack", "config": {"url": "https://s.test/x"}}, "name"),
        ({"name": "m", "kind": "slack", "config": ["https://s.test/x"]}, "config"),
    ],
)
def test_a_bad_channel_is_a_400_naming_the_field_and_saves_nothing(api, body, field):
    response = api.post("/api/v1/channels/", body, format="json")

    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not NotificationChannel.objects.exists()


def test_a_channel_change_replaces_its_config_and_a_bad_one_keeps_the_stored(api, user):
    channel = WebhookChannelFactory(owner=user)

    bad = api.patch(f"/api/v1/channels/{channel.pk}/", {"config": {"secret": "x"}}, format="json")
    good = api.patch(
        f"/api/v1/channels/{channel.pk}/",
        {"config": {"url": "https://new.example.test/h"}},
        format="json",
    )

    assert bad.status_code == 400 and "config" in bad.json()
    assert good.status_code == 200 and good.json()["has_secret"] is False
    channel.refresh_from_db()
    assert channel.config == {"url": "https://new.example.test/h"}


def test_a_test_send_masks_the_secret_url_in_its_error(api, user):
    # Nothing listens on port 9: the HTTP client's error repeats the path it asked for.
    url = f"http://127.0.0.1:9/{URL_TOKEN}"
    channel = WebhookChannelFactory(owner=user, config={"url": url, "secret": SECRET})

    response = api.post(f"/api/v1/channels/{channel.pk}/test/")
    legacy = api.post(f"/api/v1/alerting/channels/{channel.pk}/test")

    assert response.status_code == 502 and legacy.status_code == 502
    assert response.json()["status"] == "failed" and "***" in response.json()["error"]
    assert_no_secret(api)
    # Masked where it is kept too: the record, the channel's health (the admin's pages).
    stored = [n.error for n in Notification.objects.all()]
    stored.append(ChannelHealth.objects.get(channel=channel).last_error)
    assert all(text and URL_TOKEN not in text for text in stored)


def test_a_test_send_that_goes_is_a_200(api, user, receiver):
    channel = WebhookChannelFactory(owner=user, config={"url": receiver.url("/ok")})

    response = api.post(f"/api/v1/channels/{channel.pk}/test/")

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "sent" and len(receiver.requests) == 1


def test_channels_filter_by_kind(api, user):
    email = NotificationChannelFactory(owner=user)
    WebhookChannelFactory(owner=user)

    rows = api.get("/api/v1/channels/?kind=email").json()["results"]

    assert [row["id"] for row in rows] == [email.pk]
    assert api.get("/api/v1/channels/?kind=pigeon").status_code == 400


def test_deleting_a_channel(api, user):
    channel = NotificationChannelFactory(owner=user)

    assert api.delete(f"/api/v1/channels/{channel.pk}/").status_code == 204
    assert not NotificationChannel.objects.filter(pk=channel.pk).exists()


# --- alert rules ----------------------------------------------------------------------


def test_it_creates_a_rule_of_its_monitor_through_its_channels(api, user):
    monitor = MonitorFactory(owner=user)
    channel = NotificationChannelFactory(owner=user)

    response = api.post(
        "/api/v1/rules/",
        {"monitor": monitor.pk, "kind": "latency", "threshold": 800, "channels": [channel.pk]},
        format="json",
    )

    assert response.status_code == 201, response.content
    rule = AlertRule.objects.get(pk=response.json()["id"])
    assert (rule.monitor, rule.threshold, list(rule.channels.all())) == (monitor, 800, [channel])
    assert response.json()["channels"] == [channel.pk]


def test_a_rule_cannot_name_another_owners_monitor_or_channel(api, user, other_user):
    mine = MonitorFactory(owner=user)
    theirs = MonitorFactory(owner=other_user)
    their_channel = NotificationChannelFactory(owner=other_user)

    on_theirs = api.post("/api/v1/rules/", {"monitor": theirs.pk}, format="json")
    through_theirs = api.post(
        "/api/v1/rules/", {"monitor": mine.pk, "channels": [their_channel.pk]}, format="json"
    )
    missing = api.post("/api/v1/rules/", {"monitor": 10**9}, format="json")

    assert on_theirs.status_code == 400 and "monitor" in on_theirs.json()
    assert through_theirs.status_code == 400 and "channels" in through_theirs.json()
    # Another owner's monitor reads exactly like one that does not exist.
    assert on_theirs.json()["monitor"][0].replace(str(theirs.pk), "N") == missing.json()["monitor"][
        0
    ].replace(str(10**9), "N")
    assert not AlertRule.objects.exists()


def test_staff_cannot_wire_a_rule_to_a_channel_of_another_owner(user, other_user, operator):
    monitor = MonitorFactory(owner=user)
    channel = NotificationChannelFactory(owner=other_user)

    response = token_client(operator).post(
        "/api/v1/rules/", {"monitor": monitor.pk, "channels": [channel.pk]}, format="json"
    )

    assert response.status_code == 400 and "channels" in response.json()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "down", "threshold": 101}, "threshold"),
        ({"kind": "tls_expiry", "threshold": 400}, "threshold"),
        ({"kind": "latency", "consecutive_checks": 0}, "consecutive_checks"),
        # 2 minutes of a 60 s monitor are 2 checks: too few for a p95.
        ({"kind": "latency_p95", "threshold": 500, "window_minutes": 2}, "window_minutes"),
        ({"kind": "sideways"}, "kind"),
    ],
)
def test_a_bad_rule_is_a_400_naming_the_field(api, user, body, field):
    monitor = MonitorFactory(owner=user, interval_seconds=60)

    response = api.post("/api/v1/rules/", {"monitor": monitor.pk, **body}, format="json")

    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not AlertRule.objects.exists()


def test_rules_are_changed_filtered_and_deleted(api, user):
    monitor, other = MonitorFactory(owner=user), MonitorFactory(owner=user)
    rule = AlertRuleFactory(monitor=monitor)
    AlertRuleFactory(monitor=other, kind=AlertRule.Kind.LATENCY, threshold=500)

    changed = api.patch(f"/api/v1/rules/{rule.pk}/", {"threshold": 3}, format="json")
    by_monitor = api.get(f"/api/v1/rules/?monitor={monitor.pk}").json()["results"]
    by_kind = api.get("/api/v1/rules/?kind=latency").json()["results"]

    assert changed.status_code == 200 and changed.json()["threshold"] == 3
    assert api.get(f"/api/v1/rules/{rule.pk}/").json() == changed.json()
    assert [row["id"] for row in by_monitor] == [rule.pk]
    assert [row["monitor"] for row in by_kind] == [other.pk]
    assert api.get("/api/v1/rules/?monitor=x").status_code == 400
    assert api.delete(f"/api/v1/rules/{rule.pk}/").status_code == 204


# --- maintenance windows --------------------------------------------------------------


def window_body(**changes):
    return {
        "name": "db upgrade",
        "starts_at": "2026-12-06T02:00:00+01:00",
        "ends_at": "2026-12-06T03:00:00+01:00",
        "time_zone": "Europe/Berlin",
        "repeat": "weekly",
        **changes,
    }


def test_it_creates_a_window_over_monitors_and_tags(api, user):
    monitor = MonitorFactory(owner=user)

    response = api.post(
        "/api/v1/maintenance-windows/",
        window_body(monitors=[monitor.pk], tags=["db"]),
        format="json",
    )

    assert response.status_code == 201, response.content
    window = MaintenanceWindow.objects.get(pk=response.json()["id"])
    assert window.owner == user and list(window.monitors.all()) == [monitor]
    assert [t.name for t in window.tags.all()] == ["db"]
    assert window.starts_at == dt.datetime(2026, 12, 6, 1, 0, tzinfo=dt.UTC)
    assert response.json()["tags"] == ["db"] and response.json()["active"] is False


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"ends_at": "2026-12-06T01:00:00+01:00"}, "ends_at"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"ends_at": "2026-12-20T03:00:00+01:00"}, "ends_at"),  # weekly, over a week
        ({"starts_at": "tomorrow"}, "starts_at"),
        ({"tags": ["not a tag!"]}, "tags"),
        ({"repeat": "daily"}, "repeat"),
    ],
)
def test_a_bad_window_is_a_400_naming_the_field(api, changes, field):
    response = api.post("/api/v1/maintenance-windows/", window_body(**changes), format="json")

    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not MaintenanceWindow.objects.exists()


def test_a_window_cannot_cover_another_owners_monitor(api, other_user):
    theirs = MonitorFactory(owner=other_user)

    response = api.post(
        "/api/v1/maintenance-windows/", window_body(monitors=[theirs.pk]), format="json"
    )

    assert response.status_code == 400 and "monitors" in response.json()


def test_windows_are_changed_filtered_and_deleted(api, user):
    monitor = MonitorFactory(owner=user)
    covering = MaintenanceWindowFactory(owner=user)
    covering.monitors.add(monitor)
    MaintenanceWindowFactory(owner=user)

    active = api.get(f"/api/v1/maintenance-windows/?monitor={monitor.pk}").json()["results"]
    changed = api.patch(
        f"/api/v1/maintenance-windows/{covering.pk}/", {"monitors": []}, format="json"
    )

    assert [row["id"] for row in active] == [covering.pk] and active[0]["active"] is True
    assert changed.status_code == 200 and changed.json()["monitors"] == []
    assert api.get(f"/api/v1/maintenance-windows/{covering.pk}/").json() == changed.json()
    assert api.delete(f"/api/v1/maintenance-windows/{covering.pk}/").status_code == 204


# --- incidents ------------------------------------------------------------------------


def test_incidents_are_paged_newest_first_and_filtered(api, user):
    monitor, other = MonitorFactory(owner=user), MonitorFactory(owner=user)
    old = incident(monitor, minutes=0)
    still_open = incident(monitor, minutes=10, open_=True)
    elsewhere = incident(other, minutes=20)

    page = api.get("/api/v1/incidents/?page_size=2").json()
    by_monitor = api.get(f"/api/v1/incidents/?monitor={monitor.pk}").json()["results"]
    only_open = api.get("/api/v1/incidents/?open=true").json()["results"]
    closed = api.get("/api/v1/incidents/?open=false").json()["results"]
    later = api.get(
        "/api/v1/incidents/", {"started_after": (T0 + dt.timedelta(minutes=5)).isoformat()}
    ).json()["results"]

    assert page["count"] == 3 and page["next"]
    assert [row["id"] for row in page["results"]] == [elsewhere.pk, still_open.pk]
    assert [row["id"] for row in by_monitor] == [still_open.pk, old.pk]
    assert [row["id"] for row in only_open] == [still_open.pk]
    assert [row["id"] for row in closed] == [elsewhere.pk, old.pk]
    assert [row["id"] for row in later] == [elsewhere.pk, still_open.pk]
    assert api.get(f"/api/v1/incidents/{old.pk}/").json()["monitor"] == monitor.pk


@pytest.mark.parametrize(
    "query", ["monitor=x", "monitor=0", "open=maybe", "started_after=yesterday"]
)
def test_a_bad_incident_filter_is_a_400_naming_it(api, query):
    response = api.get(f"/api/v1/incidents/?{query}")

    assert response.status_code == 400, response.content
    assert query.split("=")[0] in response.json()


# --- across owners and lists ----------------------------------------------------------


@pytest.fixture
def foreign(other_user):
    """One object of each kind belonging to ``other_user``."""
    monitor = MonitorFactory(owner=other_user)
    return {
        "channels": WebhookChannelFactory(owner=other_user, config={"url": "https://x.test/h"}),
        "rules": AlertRuleFactory(monitor=monitor),
        "maintenance-windows": MaintenanceWindowFactory(owner=other_user),
        "incidents": incident(monitor, minutes=0),
    }


@pytest.mark.parametrize("resource", ["channels", "rules", "maintenance-windows", "incidents"])
@pytest.mark.parametrize("method", ["get", "patch", "delete"])
def test_another_owners_object_is_not_found(api, foreign, resource, method):
    obj = foreign[resource]
    path = f"/api/v1/{resource}/{obj.pk}/"

    response = getattr(api, method)(path, {}, format="json")

    expected = 405 if resource == "incidents" and method != "get" else 404
    assert response.status_code == expected
    assert type(obj).objects.filter(pk=obj.pk).exists()
    assert api.get(f"/api/v1/{resource}/").json()["results"] == []


def test_another_owners_channel_cannot_be_test_sent(api, foreign):
    assert api.post(f"/api/v1/channels/{foreign['channels'].pk}/test/").status_code == 404


@pytest.mark.parametrize(
    "resource", ["monitors", "tags", "channels", "rules", "maintenance-windows", "incidents"]
)
def test_every_list_is_paged_the_same_way(api, user, resource):
    for _ in range(3):
        monitor = MonitorFactory(owner=user)
        monitor.tags.create(name=f"t{monitor.pk}")
        AlertRuleFactory(monitor=monitor)
        NotificationChannelFactory(owner=user)
        MaintenanceWindowFactory(owner=user)
        incident(monitor, minutes=monitor.pk)

    first = api.get(f"/api/v1/{resource}/?page_size=2").json()
    second = api.get(first["next"]).json()

    assert set(first) == {"count", "next", "previous", "results"}
    assert first["count"] == 3 and len(first["results"]) == 2 and first["previous"] is None
    assert len(second["results"]) == 1 and second["next"] is None
    assert api.get(f"/api/v1/{resource}/?page=9").status_code == 404


@pytest.mark.parametrize("resource", ["channels", "rules", "maintenance-windows", "incidents"])
def test_signed_out_callers_get_a_401(db, resource):
    assert APIClient().get(f"/api/v1/{resource}/").status_code == 401


def test_the_api_refuses_a_rule_with_the_admins_words(api, user):
    """The admin's form and the API run the same model validation, so the same bad rule
    gets the same message."""
    monitor = MonitorFactory(owner=user)
    with pytest.raises(ValidationError) as refused:
        AlertRule(monitor=monitor, kind="down", threshold=101).full_clean()
    expected = refused.value.message_dict["threshold"]

    response = api.post(
        "/api/v1/rules/", {"monitor": monitor.pk, "kind": "down", "threshold": 101}, format="json"
    )

    assert response.json()["threshold"] == expected
