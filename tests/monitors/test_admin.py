from __future__ import annotations

import pytest
from django.urls import reverse

from monitors.models import Monitor
from tests.factories import AlertRuleFactory, MonitorFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:monitors_monitor_changelist")


@pytest.fixture
def admin_client(client, operator):
    client.force_login(operator)
    return client


def test_operators_see_every_owners_monitors_with_status_and_interval(
    admin_client, user, other_user
):
    MonitorFactory(owner=user, name="Alpha shop", status=Monitor.Status.UP, interval_seconds=300)
    MonitorFactory(owner=other_user, name="Beta api", status=Monitor.Status.DOWN)

    response = admin_client.get(CHANGELIST)

    assert response.status_code == 200
    body = response.content.decode()
    assert "Alpha shop" in body and "Beta api" in body
    assert "300" in body
    assert user.username in body and other_user.username in body


@pytest.mark.parametrize(
    ("query", "shown", "hidden"),
    [
        ({"status__exact": "down"}, "Beta api", "Alpha shop"),
        ({"kind__exact": "tcp"}, "Gamma db", "Alpha shop"),
        ({"q": "alpha"}, "Alpha shop", "Beta api"),
        ({"q": "api.example.test"}, "Beta api", "Alpha shop"),
    ],
)
def test_it_filters_and_searches(admin_client, query, shown, hidden):
    MonitorFactory(name="Alpha shop", status=Monitor.Status.UP)
    MonitorFactory(name="Beta api", url="https://api.example.test/", status=Monitor.Status.DOWN)
    MonitorFactory(name="Gamma db", kind="tcp", url="tcp://db.example.test:5432")

    body = admin_client.get(CHANGELIST, query).content.decode()

    assert shown in body
    assert hidden not in body


def test_it_filters_by_tag_and_owner(admin_client, user, other_user):
    tagged = MonitorFactory(owner=user, name="Tagged one")
    tagged.tags.create(name="payments")
    MonitorFactory(owner=other_user, name="Untagged one")

    by_tag = admin_client.get(CHANGELIST, {"tags__id__exact": tagged.tags.get().pk})
    by_owner = admin_client.get(CHANGELIST, {"owner__id__exact": other_user.pk})

    assert "Tagged one" in by_tag.content.decode()
    assert "Untagged one" not in by_tag.content.decode()
    assert "Untagged one" in by_owner.content.decode()
    assert "Tagged one" not in by_owner.content.decode()


def run_action(client, action, monitors):
    return client.post(
        CHANGELIST,
        {"action": action, "_selected_action": [m.pk for m in monitors]},
        follow=True,
    )


def test_the_pause_and_resume_actions_change_only_the_selected_monitors(admin_client):
    chosen, untouched = MonitorFactory(), MonitorFactory()

    response = run_action(admin_client, "pause_monitors", [chosen])

    assert "Paused 1 monitor(s)." in response.content.decode()
    chosen.refresh_from_db()
    untouched.refresh_from_db()
    assert chosen.status == Monitor.Status.PAUSED and not chosen.enabled
    assert untouched.enabled

    run_action(admin_client, "resume_monitors", [chosen])
    chosen.refresh_from_db()
    assert chosen.enabled and chosen.status == Monitor.Status.PENDING


def test_check_now_queues_a_probe_for_enabled_monitors_and_skips_paused_ones(
    admin_client, probes_queue, django_capture_on_commit_callbacks
):
    enabled = MonitorFactory()
    paused = MonitorFactory(enabled=False, status=Monitor.Status.PAUSED)

    # The probe is published once the action's transaction commits.
    with django_capture_on_commit_callbacks(execute=True):
        response = run_action(admin_client, "check_now", [enabled, paused])

    assert "Queued a check of 1 monitor(s)" in response.content.decode()
    assert "1 paused monitor(s) skipped" in response.content.decode()
    [message] = probes_queue()
    assert message.headers["task"] == "monitors.probes.check_batch"
    assert [pk for pk, _ms in message.payload[0][0]] == [enabled.pk]


def test_the_change_page_shows_alert_rules_inline(admin_client):
    rule = AlertRuleFactory(threshold=3)

    response = admin_client.get(reverse("admin:monitors_monitor_change", args=[rule.monitor.pk]))

    assert response.status_code == 200
    body = response.content.decode()
    assert 'name="alert_rules-0-threshold"' in body
    assert 'value="3"' in body


def test_the_admin_refuses_an_invalid_monitor_with_a_field_error(admin_client, user):
    response = admin_client.post(
        reverse("admin:monitors_monitor_add"),
        {
            "owner": user.pk,
            "name": "Bad",
            "kind": "http",
            "url": "ftp://x.test/",
            "method": "GET",
            "headers": "{}",
            "body": "",
            "timeout_seconds": 10,
            "interval_seconds": 60,
            "expected_status_codes": "200-299",
            "keyword": "",
            "keyword_mode": "present",
            "max_body_kib": 1024,
            "enabled": "on",
            "alert_rules-TOTAL_FORMS": 0,
            "alert_rules-INITIAL_FORMS": 0,
        },
    )

    assert response.status_code == 200
    assert "Enter a valid URL" in response.content.decode()
    assert not Monitor.objects.exists()


def test_non_staff_users_cannot_reach_the_admin(client, user):
    client.force_login(user)

    response = client.get(CHANGELIST)

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_the_admin_links_to_the_dashboard_and_health(admin_client):
    body = admin_client.get(CHANGELIST).content.decode()

    assert "UptimeSentinel operators" in body
    assert 'href="/dashboard/"' in body
    assert 'href="/healthz"' in body
