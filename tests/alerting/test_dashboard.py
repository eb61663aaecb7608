"""The owner's alerting pages in the dashboard: channels (with a test send), a
monitor's alert rules, maintenance windows. Saves go through the services, so bad
input is refused naming the field, as the API refuses it; secrets are taken and never
shown; another owner's objects are a 404 and never among a form's choices."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.test import Client

from alerting.models import AlertRule, MaintenanceWindow, Notification, NotificationChannel
from tests.factories import (
    AlertRuleFactory,
    MaintenanceWindowFactory,
    MonitorFactory,
    NotificationChannelFactory,
    WebhookChannelFactory,
)

pytestmark = pytest.mark.django_db

SECRET = "sig-Qw71-never-shown"
URL_TOKEN = "T0K3N-in-the-path"


class RecordingClient(Client):
    """A signed-in test client that keeps every response body, to look for secrets."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.bodies: list[bytes] = []

    def request(self, **request):
        response = super().request(**request)
        self.bodies.append(response.content)
        return response


@pytest.fixture
def owner(user) -> RecordingClient:
    client = RecordingClient()
    client.force_login(user)
    return client


def assert_no_secret(client: RecordingClient, *secrets: str) -> None:
    assert client.bodies
    for body in client.bodies:
        for secret in (SECRET, URL_TOKEN, *secrets):
            assert secret.encode() not in body


def errors(response) -> dict[str, list[str]]:
    assert response.status_code == 200, response.status_code  # the form again
    return response.context["form"].errors


def webhook_post(url: str = f"https://hooks.example.test/{URL_TOKEN}?key=abc", **changes):
    return {"name": "ops hook", "kind": "webhook", "url": url, "secret": SECRET, **changes}


# --- pages ---------------------------------------------------------------------------------


@pytest.fixture
def objects(user):
    monitor = MonitorFactory(owner=user, name="shop")
    channel = WebhookChannelFactory(owner=user, config={"url": f"https://x.test/{URL_TOKEN}"})
    rule = AlertRuleFactory(monitor=monitor)
    rule.channels.set([channel])
    window = MaintenanceWindowFactory(owner=user, name="backups")
    window.monitors.set([monitor])
    return {"monitor": monitor, "channel": channel, "rule": rule, "window": window}


PAGES = [
    "/dashboard/channels/",
    "/dashboard/channels/new/",
    "/dashboard/channels/{channel}/edit/",
    "/dashboard/channels/{channel}/delete/",
    "/dashboard/monitors/{monitor}/rules/",
    "/dashboard/monitors/{monitor}/rules/new/",
    "/dashboard/rules/{rule}/edit/",
    "/dashboard/rules/{rule}/delete/",
    "/dashboard/maintenance/",
    "/dashboard/maintenance/new/",
    "/dashboard/maintenance/{window}/edit/",
    "/dashboard/maintenance/{window}/delete/",
]


def page(path: str, objects) -> str:
    return path.format(**{name: obj.pk for name, obj in objects.items()})


@pytest.mark.parametrize("path", PAGES)
def test_each_page_renders_for_its_owner_without_secrets(owner, objects, path):
    response = owner.get(page(path, objects))

    assert response.status_code == 200
    if "form" in response.context:
        for field in response.context["form"]:
            assert f'name="{field.name}"' in response.content.decode()
    assert_no_secret(owner)


def test_the_pages_are_linked_from_the_navigation_and_the_monitor_page(
    owner, objects, telemetry_tables, redis_client
):
    overview = owner.get("/dashboard/").content.decode()
    monitor = owner.get(f"/dashboard/monitors/{objects['monitor'].pk}/").content.decode()

    assert 'href="/dashboard/channels/"' in overview
    assert 'href="/dashboard/maintenance/"' in overview
    assert f'href="/dashboard/monitors/{objects["monitor"].pk}/rules/"' in monitor


def test_signed_out_visitors_are_sent_to_sign_in(client, objects):
    for path in PAGES:
        response = client.get(page(path, objects))
        assert response.status_code == 302 and "/login/" in response["Location"]


def test_changes_need_the_csrf_token(user, objects):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)

    response = client.post(f"/dashboard/channels/{objects['channel'].pk}/delete/")

    assert response.status_code == 403
    assert NotificationChannel.objects.filter(pk=objects["channel"].pk).exists()


# --- channels ------------------------------------------------------------------------------


def test_an_owner_creates_a_webhook_channel_and_never_sees_its_secrets_again(owner, user):
    response = owner.post("/dashboard/channels/new/", webhook_post())

    assert response.status_code == 302 and response["Location"] == "/dashboard/channels/"
    channel = NotificationChannel.objects.get()
    assert channel.owner == user and channel.kind == "webhook"
    assert channel.config == {
        "url": f"https://hooks.example.test/{URL_TOKEN}?key=abc",
        "secret": SECRET,
    }
    listing = owner.get("/dashboard/channels/").content.decode()
    edit = owner.get(f"/dashboard/channels/{channel.pk}/edit/").content.decode()
    assert "https://hooks.example.test/…" in listing and "(signed)" in listing
    assert "set — leave empty to keep" in edit
    assert_no_secret(owner, "key=abc")


def test_an_email_and_a_slack_channel(owner):
    email = owner.post(
        "/dashboard/channels/new/", {"name": "me", "kind": "email", "address": "ops@example.test"}
    )
    slack = owner.post(
        "/dashboard/channels/new/",
        {
            "name": "chat",
            "kind": "slack",
            "url": f"https://slack.test/{URL_TOKEN}",
            "secret": "ignored",
        },
    )

    assert email.status_code == 302 and slack.status_code == 302
    configs = dict(NotificationChannel.objects.values_list("name", "config"))
    assert configs == {
        "me": {"address": "ops@example.test"},
        "chat": {"url": f"https://slack.test/{URL_TOKEN}"},
    }
    assert "ops@example.test" in owner.get("/dashboard/channels/").content.decode()


def test_a_change_keeps_the_secrets_left_empty_and_replaces_those_typed(owner, user):
    channel = WebhookChannelFactory(
        owner=user, config={"url": "https://a.test/1", "secret": SECRET}
    )
    edit = f"/dashboard/channels/{channel.pk}/edit/"

    renamed = owner.post(edit, {"name": "renamed", "kind": "webhook", "url": "", "secret": ""})
    channel.refresh_from_db()
    assert renamed.status_code == 302
    assert (channel.name, channel.config) == (
        "renamed",
        {"url": "https://a.test/1", "secret": SECRET},
    )

    owner.post(
        edit, {"name": "renamed", "kind": "webhook", "url": "https://b.test/2", "secret": ""}
    )
    channel.refresh_from_db()
    assert channel.config == {"url": "https://b.test/2", "secret": SECRET}

    owner.post(edit, {"name": "renamed", "kind": "webhook", "url": "", "remove_secret": "on"})
    channel.refresh_from_db()
    assert channel.config == {"url": "https://b.test/2"}


def test_a_change_of_kind_keeps_no_secret_of_the_old_kind(owner, user):
    channel = WebhookChannelFactory(
        owner=user, config={"url": "https://a.test/1", "secret": SECRET}
    )

    response = owner.post(
        f"/dashboard/channels/{channel.pk}/edit/", {"name": "x", "kind": "slack", "url": ""}
    )

    assert "url" in errors(response)
    channel.refresh_from_db()
    assert channel.kind == "webhook" and channel.config["secret"] == SECRET


@pytest.mark.parametrize(
    ("post", "field", "message"),
    [
        (webhook_post(url="ftp://x.example.test/"), "url", "Enter a valid URL."),
        (webhook_post(url=f"https://me:{URL_TOKEN}@x.test/"), "url", "Put credentials in a header"),
        (webhook_post(url=""), "url", "needs 'url'"),
        ({"name": "m", "kind": "email", "address": "not-an-address"}, "address", "valid email"),
        ({"name": "m", "kind": "apprise", "url": "no-scheme"}, "url", "An Apprise URL looks like"),
        ({"name": "m", "kind": "pigeon", "url": "https://s.test/x"}, "kind", "not one of"),
        ({"name": "", "kind": "slack", "url": "https://s.test/x"}, "name", "required"),
    ],
)
def test_a_bad_channel_is_refused_naming_the_field_and_saves_nothing(owner, post, field, message):
    response = owner.post("/dashboard/channels/new/", post)

    assert message in " ".join(errors(response)[field])
    assert not NotificationChannel.objects.exists()
    assert_no_secret(owner)


def test_deleting_a_channel_asks_first(owner, user):
    channel = NotificationChannelFactory(owner=user)
    path = f"/dashboard/channels/{channel.pk}/delete/"

    asked = owner.get(path)
    assert asked.status_code == 200 and NotificationChannel.objects.filter(pk=channel.pk).exists()
    deleted = owner.post(path)

    assert deleted.status_code == 302
    assert not NotificationChannel.objects.filter(pk=channel.pk).exists()


def test_send_test_delivers_to_the_channel(owner, user, receiver):
    channel = WebhookChannelFactory(
        owner=user, config={"url": receiver.url(f"/ok/{URL_TOKEN}"), "secret": SECRET}
    )

    response = owner.post(f"/dashboard/channels/{channel.pk}/test/", follow=True)

    assert response.status_code == 200
    assert f"Test notification sent to {channel.name}." in response.content.decode()
    (received,) = receiver.wait_for(1)
    assert received.json()["event"] == "test"
    assert received.headers["X-Sentinel-Signature"].startswith("sha256=")
    assert Notification.objects.get().status == Notification.Status.SENT
    assert_no_secret(owner)


def test_a_failed_send_test_says_why_without_the_secret_url(owner, user, receiver):
    channel = WebhookChannelFactory(
        owner=user, config={"url": receiver.url(f"/status/410/{URL_TOKEN}")}
    )

    response = owner.post(f"/dashboard/channels/{channel.pk}/test/", follow=True)

    text = response.content.decode()
    assert f'<li class="error">Test notification to {channel.name} failed:' in text
    assert "410" in text
    assert len(receiver.every_request) == 1
    assert_no_secret(owner)


def test_send_test_is_a_post(owner, objects):
    response = owner.get(f"/dashboard/channels/{objects['channel'].pk}/test/")

    assert response.status_code == 405
    assert not Notification.objects.exists()


# --- alert rules ---------------------------------------------------------------------------


def test_an_owner_manages_a_monitors_rules_through_its_channels(owner, user, other_user):
    monitor = MonitorFactory(owner=user, name="shop")
    mine = NotificationChannelFactory(owner=user, name="mine")
    theirs = NotificationChannelFactory(owner=other_user, name="theirs")
    new = f"/dashboard/monitors/{monitor.pk}/rules/new/"

    form = owner.get(new).content.decode()
    assert "mine" in form and "theirs" not in form
    created = owner.post(
        new,
        {
            "kind": "latency",
            "threshold": "800",
            "consecutive_checks": "3",
            "window_minutes": "5",
            "channels": [mine.pk],
            "enabled": "on",
        },
    )
    assert created.status_code == 302
    assert created["Location"] == f"/dashboard/monitors/{monitor.pk}/rules/"
    rule = AlertRule.objects.get()
    assert (rule.monitor, rule.kind, rule.threshold, rule.consecutive_checks) == (
        monitor,
        "latency",
        800,
        3,
    )
    assert list(rule.channels.all()) == [mine]
    listing = owner.get(f"/dashboard/monitors/{monitor.pk}/rules/").content.decode()
    assert "Latency above threshold" in listing and "mine" in listing

    changed = owner.post(
        f"/dashboard/rules/{rule.pk}/edit/",
        {"kind": "down", "threshold": "3", "consecutive_checks": "1", "window_minutes": "5"},
    )
    assert changed.status_code == 302
    rule.refresh_from_db()
    assert (rule.kind, rule.threshold, rule.enabled, list(rule.channels.all())) == (
        "down",
        3,
        False,
        [],
    )

    refused = owner.post(
        f"/dashboard/rules/{rule.pk}/edit/",
        {
            "kind": "down",
            "threshold": "3",
            "consecutive_checks": "1",
            "window_minutes": "5",
            "channels": [theirs.pk],
        },
    )
    assert "channels" in errors(refused)
    assert not rule.channels.exists()

    assert owner.post(f"/dashboard/rules/{rule.pk}/delete/").status_code == 302
    assert not AlertRule.objects.exists()


@pytest.mark.parametrize(
    ("post", "field", "message"),
    [
        (
            {"kind": "down", "threshold": "500"},
            "threshold",
            "Must be between 1 and 100 for this rule.",
        ),
        ({"kind": "tls_expiry", "threshold": "0"}, "threshold", "greater than or equal to 1"),
        (
            {"kind": "latency", "threshold": "800", "consecutive_checks": "101"},
            "consecutive_checks",
            "less than or equal to 100",
        ),
        # At a 60 s interval 2 minutes hold 2 checks, too few for a p95.
        (
            {"kind": "latency_p95", "threshold": "800", "window_minutes": "2"},
            "window_minutes",
            "a p95 needs at least",
        ),
        ({"kind": "pigeon", "threshold": "2"}, "kind", "not one of the available choices"),
    ],
)
def test_a_bad_rule_is_refused_naming_the_field(owner, user, post, field, message):
    monitor = MonitorFactory(owner=user, interval_seconds=60)
    data = {"consecutive_checks": "1", "window_minutes": "5", **post}

    response = owner.post(f"/dashboard/monitors/{monitor.pk}/rules/new/", data)

    assert message in " ".join(errors(response)[field])
    assert not AlertRule.objects.exists()


# --- maintenance windows -------------------------------------------------------------------


def window_post(**changes):
    return {
        "name": "Backups",
        "time_zone": "Europe/Berlin",
        "starts_at": "2026-07-05T02:00",
        "ends_at": "2026-07-05T03:00",
        "repeat": "weekly",
        "repeat_until": "",
        "tags": "",
        **changes,
    }


def test_an_owner_manages_maintenance_windows_on_their_own_clocks(owner, user):
    db, web = MonitorFactory(owner=user, name="db"), MonitorFactory(owner=user, name="web")

    created = owner.post(
        "/dashboard/maintenance/new/", window_post(monitors=[db.pk], tags="nightly, DB")
    )

    assert created.status_code == 302 and created["Location"] == "/dashboard/maintenance/"
    window = MaintenanceWindow.objects.get()
    assert window.owner == user and list(window.monitors.all()) == [db]
    assert sorted(t.name for t in window.tags.all()) == ["db", "nightly"]
    # 02:00 in Berlin in summer (CEST, UTC+2) is 00:00 UTC.
    assert window.starts_at == dt.datetime(2026, 7, 5, 0, 0, tzinfo=dt.UTC)
    listing = owner.get("/dashboard/maintenance/").content.decode()
    assert "Backups" in listing and "Every week" in listing and "(Europe/Berlin)" in listing
    assert "db; tags db, nightly" in listing
    edit = owner.get(f"/dashboard/maintenance/{window.pk}/edit/").content.decode()
    assert 'value="2026-07-05T02:00"' in edit and 'value="db, nightly"' in edit

    changed = owner.post(
        f"/dashboard/maintenance/{window.pk}/edit/",
        window_post(name="Backups 2", monitors=[web.pk], repeat="none"),
    )
    assert changed.status_code == 302
    window.refresh_from_db()
    assert (window.name, window.repeat, list(window.monitors.all())) == ("Backups 2", "none", [web])
    assert not window.tags.exists()

    assert owner.post(f"/dashboard/maintenance/{window.pk}/delete/").status_code == 302
    assert not MaintenanceWindow.objects.exists()


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"ends_at": "2026-07-05T01:00"}, "ends_at", "The window must end after it starts."),
        (
            {"ends_at": "2026-07-13T02:00"},
            "ends_at",
            "A weekly window must be shorter than a week.",
        ),
        ({"time_zone": "Mars/Olympus"}, "time_zone", "is not a time zone"),
        # Berlin's clocks jump from 02:00 to 03:00 on 2027-03-28.
        (
            {"starts_at": "2027-03-28T02:30", "ends_at": "2027-03-28T04:00"},
            "starts_at",
            "does not exist",
        ),
        ({"starts_at": "soon"}, "starts_at", "Enter a valid date/time."),
        ({"tags": "not a tag!"}, "tags", "Enter a valid “slug”"),
        ({"name": ""}, "name", "required"),
    ],
)
def test_a_bad_window_is_refused_naming_the_field(owner, changes, field, message):
    response = owner.post("/dashboard/maintenance/new/", window_post(**changes))

    assert message in " ".join(errors(response)[field])
    assert not MaintenanceWindow.objects.exists()


def test_another_owners_monitor_is_no_choice_for_a_window(owner, other_user):
    theirs = MonitorFactory(owner=other_user, name="their-monitor")

    form = owner.get("/dashboard/maintenance/new/").content.decode()
    response = owner.post("/dashboard/maintenance/new/", window_post(monitors=[theirs.pk]))

    assert "their-monitor" not in form
    assert "monitors" in errors(response)
    assert not MaintenanceWindow.objects.exists()


# --- another owner's objects ---------------------------------------------------------------


@pytest.fixture
def foreign(other_user):
    monitor = MonitorFactory(owner=other_user)
    return {
        "monitor": monitor,
        "channel": WebhookChannelFactory(
            owner=other_user, config={"url": f"https://x.test/{URL_TOKEN}"}
        ),
        "rule": AlertRuleFactory(monitor=monitor),
        "window": MaintenanceWindowFactory(owner=other_user),
    }


@pytest.mark.parametrize(
    ("path", "method"),
    [(p, m) for p in PAGES if "{" in p for m in ("get", "post")]
    # A GET of the test send is a 405 before any lookup.
    + [("/dashboard/channels/{channel}/test/", "post")],
)
def test_another_owners_objects_are_not_found(owner, foreign, path, method):
    channel_config = dict(foreign["channel"].config)
    data = {"name": "mine now", "kind": "webhook", "url": "https://evil.test/", "threshold": "5"}

    response = getattr(owner, method)(page(path, foreign), data)

    assert response.status_code == 404
    foreign["channel"].refresh_from_db()
    assert foreign["channel"].config == channel_config and foreign["channel"].name != "mine now"
    assert AlertRule.objects.filter(pk=foreign["rule"].pk, threshold=2).exists()
    assert MaintenanceWindow.objects.filter(pk=foreign["window"].pk).exists()
    assert not Notification.objects.exists()
    assert_no_secret(owner)


def test_lists_show_only_the_owners_objects(owner, foreign, objects):
    channels = owner.get("/dashboard/channels/").content.decode()
    windows = owner.get("/dashboard/maintenance/").content.decode()

    assert foreign["channel"].name not in channels and objects["channel"].name in channels
    assert foreign["window"].name not in windows and objects["window"].name in windows


def test_an_operator_sees_every_owners_channels(client, operator, foreign):
    client.force_login(operator)

    listing = client.get("/dashboard/channels/").content.decode()

    assert foreign["channel"].name in listing
    assert URL_TOKEN not in listing
    assert json.dumps(foreign["channel"].config) not in listing
