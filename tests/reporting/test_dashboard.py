"""Dashboard pages: login, ownership (404), filters, the page's query count, the
monitor page's figures, the form's validation and "check now"; and /metrics."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from monitors.models import Monitor, Tag
from telemetry.records import CheckResult, FailureKind
from tests.factories import MonitorFactory, UserFactory
from tests.reporting.rows import store_results

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_cache(redis_client):
    """The fleet summary is cached in Redis db 15, emptied per test."""


@pytest.fixture
def browser(client, user):
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    "path", ["/dashboard/", "/dashboard/monitors/1/", "/dashboard/monitors/new/"]
)
def test_pages_require_login(client, path):
    response = client.get(path)

    assert response.status_code == 302
    assert response["Location"].startswith("/dashboard/login/?next=")


def test_a_user_logs_in_and_out(client, user):
    response = client.post(
        "/dashboard/login/", {"username": user.username, "password": "correct horse"}
    )
    assert response.status_code == 302 and response["Location"] == "/dashboard/"
    assert client.get("/dashboard/").status_code == 200

    client.post("/dashboard/logout/")
    assert client.get("/dashboard/").status_code == 302


def test_a_wrong_password_shows_the_form_again(client, user):
    response = client.post("/dashboard/login/", {"username": user.username, "password": "nope"})

    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()


def test_owners_see_only_their_monitors_and_staff_see_all(client, user, other_user, operator):
    MonitorFactory(owner=user, name="Mine")
    MonitorFactory(owner=other_user, name="Theirs")

    client.force_login(user)
    mine = client.get("/dashboard/").content.decode()
    client.force_login(operator)
    everything = client.get("/dashboard/").content.decode()

    assert "Mine" in mine and "Theirs" not in mine
    assert "Mine" in everything and "Theirs" in everything


@pytest.mark.parametrize(
    "path",
    ["/dashboard/monitors/{pk}/", "/dashboard/monitors/{pk}/edit/"],
)
def test_another_users_monitor_page_is_not_found(browser, other_user, path):
    foreign = MonitorFactory(owner=other_user, name="Secret")

    response = browser.get(path.format(pk=foreign.pk))

    assert response.status_code == 404
    assert "Secret" not in response.content.decode()


def test_check_now_of_another_users_monitor_is_not_found(browser, other_user):
    later = timezone.now() + dt.timedelta(hours=1)
    foreign = MonitorFactory(owner=other_user, next_check_at=later)

    assert browser.post(f"/dashboard/monitors/{foreign.pk}/check/").status_code == 404
    foreign.refresh_from_db()
    assert foreign.next_check_at == later


def test_check_now_queues_a_probe_at_once_like_the_admin_does(
    browser, user, probes_queue, django_capture_on_commit_callbacks
):
    monitor = MonitorFactory(owner=user, next_check_at=timezone.now() + dt.timedelta(hours=1))

    with django_capture_on_commit_callbacks(execute=True):
        response = browser.post(f"/dashboard/monitors/{monitor.pk}/check/", follow=True)

    assert "A check is queued" in response.content.decode()
    [message] = probes_queue()
    assert message.headers["task"] == "monitors.probes.check_batch"
    assert [pk for pk, _ms in message.payload[0][0]] == [monitor.pk]


def test_the_overview_filters_searches_and_sorts(browser, user):
    shop = MonitorFactory(owner=user, name="Shop front", status=Monitor.Status.DOWN)
    shop.tags.add(Tag.objects.create(name="shop"))
    MonitorFactory(owner=user, name="Blog", status=Monitor.Status.UP, url="http://blog.test/")
    MonitorFactory(owner=user, name="Api", status=Monitor.Status.UP)

    def names(query):
        response = browser.get(f"/dashboard/?{query}")
        return [row["name"] for row in response.context["rows"]]

    assert names("status=down") == ["Shop front"]
    assert names("tag=shop") == ["Shop front"]
    assert names("q=blog.test") == ["Blog"]
    assert names("sort=-name") == ["Shop front", "Blog", "Api"]
    assert names("status=bogus&sort=bogus") == ["Api", "Blog", "Shop front"]


def test_the_overview_paginates_and_counts_statuses(browser, user):
    MonitorFactory.create_batch(55, owner=user, status=Monitor.Status.UP)

    first = browser.get("/dashboard/")
    last = browser.get("/dashboard/?page=2")
    beyond = browser.get("/dashboard/?page=999")

    assert len(first.context["rows"]) == 50 and len(last.context["rows"]) == 5
    assert len(beyond.context["rows"]) == 5  # out of range shows the last page
    assert 'data-status="up">55<' in first.content.decode()


def test_the_overview_query_count_does_not_grow_with_the_page(browser, user):
    def queries_for(count):
        Monitor.objects.filter(owner=user).delete()
        for monitor in MonitorFactory.create_batch(
            count, owner=user, last_checked_at=timezone.now()
        ):
            monitor.tags.add(Tag.objects.get_or_create(name="t")[0])
        cache.clear()  # the fleet summary is cached; count it every time
        with CaptureQueriesContext(connection) as captured:
            assert browser.get("/dashboard/").status_code == 200
        return len(captured)

    assert queries_for(3) == queries_for(50)


def test_the_monitor_page_shows_figures_chart_bars_and_checks(browser, history):
    monitor, _ = history

    page = browser.get(f"/dashboard/monitors/{monitor.pk}/").content.decode()

    assert 'class="series-avg"' in page and 'class="series-p95"' in page
    assert page.count("<rect") == 90
    assert "expected 200-299, got 503" in page
    assert 'data-window="30d"' in page
    for chosen in ("24h", "7d", "90d"):
        assert browser.get(f"/dashboard/monitors/{monitor.pk}/?range={chosen}").status_code == 200


def test_the_monitor_page_shows_what_matters_for_the_kind(browser, user):
    http = MonitorFactory(
        owner=user,
        json_assertions=[
            {"path": "status.indicator", "op": "==", "value": "none"},
            {"path": "version", "op": "exists"},
        ],
    )
    dns = MonitorFactory(
        owner=user,
        kind="dns",
        url="dns://example.test",
        dns_record_type="MX",
        dns_expected=["10 mail.example.test", "20 backup.example.test"],
        dns_match="all",
    )

    http_page = browser.get(f"/dashboard/monitors/{http.pk}/").content.decode()
    dns_page = browser.get(f"/dashboard/monitors/{dns.pk}/").content.decode()

    assert "<code>status.indicator == &quot;none&quot;</code>" in http_page
    assert "<code>version exists</code>" in http_page
    assert "Record type" not in http_page
    assert "<th>Record type</th><td>MX</td>" in dns_page
    assert "all of the expected values" in dns_page
    assert "<code>10 mail.example.test</code>, <code>20 backup.example.test</code>" in dns_page
    assert "the system's (/etc/resolv.conf)" in dns_page
    assert "Expected status" not in dns_page and "TLS certificate" not in dns_page


def test_the_form_marks_each_fields_kinds_so_a_page_shows_the_chosen_kinds_only(browser):
    page = browser.get("/dashboard/monitors/new/").content.decode()

    assert '<p class="kind-field for-dns"><label for="id_dns_resolver">' in page
    assert '<p class="kind-field for-http"><label for="id_json_assertions">' in page
    assert '<p class="kind-field for-http for-tls"><label for="id_tls_verify">' in page
    assert '<p class="kind-field for-ping"><label for="id_ping_count">' in page
    assert '<p><label for="id_name">' in page  # every kind's
    # Every kind that is checked (a heartbeat is pinged instead).
    assert (
        '<p class="kind-field for-http for-tcp for-tls for-dns for-ping">'
        '<label for="id_interval_seconds">'
    ) in page
    assert '<p class="kind-field for-heartbeat"><label for="id_heartbeat_cron">' in page


def test_a_field_with_an_error_is_shown_whatever_the_kind(browser):
    response = browser.post(
        "/dashboard/monitors/new/",
        {"name": "x", "kind": "http", "url": "https://x.example.test/", "dns_resolver": "nope"},
    )

    assert 'class="kind-field for-dns has-errors"' in response.content.decode()


def test_the_form_creates_a_monitor_with_tags(browser, user):
    response = browser.post(
        "/dashboard/monitors/new/",
        {
            "name": "Checkout",
            "kind": "http",
            "url": "https://checkout.example.test/",
            "method": "GET",
            "headers": "{}",
            "expected_status_codes": "200-299",
            "keyword_mode": "present",
            "max_body_kib": 1024,
            "interval_seconds": 60,
            "timeout_seconds": 10,
            "confirm_failures": 2,
            "recover_successes": 1,
            "tags": "shop, prod",
        },
    )

    monitor = Monitor.objects.get(name="Checkout")
    assert response.status_code == 302
    assert response["Location"] == f"/dashboard/monitors/{monitor.pk}/"
    assert monitor.owner == user
    assert sorted(t.name for t in monitor.tags.all()) == ["prod", "shop"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"url": "ftp://files.example.test/"}, "Enter a valid URL."),
        ({"interval_seconds": 5}, "greater than or equal to 30"),
        ({"timeout_seconds": 60}, "must be shorter than the interval"),
        ({"headers": '{"Host": "x"}'}, "set by the checker"),
        ({"tags": "bad tag!"}, "is not a tag"),
    ],
)
def test_the_form_refuses_what_the_api_refuses(browser, user, changes, message):
    monitor = MonitorFactory(owner=user, name="Kept", url="https://kept.example.test/")
    data = {
        "name": "Kept",
        "kind": "http",
        "url": "https://kept.example.test/",
        "method": "GET",
        "headers": "{}",
        "expected_status_codes": "200-299",
        "keyword_mode": "present",
        "max_body_kib": 1024,
        "interval_seconds": 60,
        "timeout_seconds": 10,
        "confirm_failures": 2,
        "recover_successes": 1,
        "tags": "",
        **changes,
    }

    response = browser.post(f"/dashboard/monitors/{monitor.pk}/edit/", data)

    assert response.status_code == 200
    assert message in response.content.decode()
    monitor.refresh_from_db()
    assert (monitor.url, monitor.interval_seconds, monitor.headers) == (
        "https://kept.example.test/",
        60,
        {},
    )


def test_metrics_expose_status_counts_and_buffer_depth(client, db, settings):
    settings.SENTINEL_METRICS_TOKEN = "scrape-token"
    owner = UserFactory()
    MonitorFactory.create_batch(2, owner=owner, status=Monitor.Status.UP)
    MonitorFactory(owner=owner, status=Monitor.Status.DOWN)

    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token")

    text = response.content.decode()
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    assert 'sentinel_monitors{status="up"} 2.0' in text
    assert 'sentinel_monitors{status="down"} 1.0' in text
    assert "sentinel_buffer_depth 0.0" in text
    assert "sentinel_buffer_oldest_age_seconds 0.0" in text
    assert "sentinel_redis_up 1.0" in text and "sentinel_database_up 1.0" in text
    assert "sentinel_monitor_up{" not in text  # per-monitor gauges are off by default


def test_metrics_per_monitor_gauges_behind_a_setting(client, history, settings):
    settings.SENTINEL_METRICS_PER_MONITOR = True
    client.force_login(UserFactory(is_staff=True))
    monitor, results = history
    Monitor.objects.filter(pk=monitor.pk).update(status=Monitor.Status.DOWN)

    text = client.get("/metrics").content.decode()

    assert f'sentinel_monitor_up{{monitor_id="{monitor.pk}"}} 0.0' in text
    seconds = results[-1].duration_ms / 1000
    last = f'sentinel_monitor_latency_seconds{{monitor_id="{monitor.pk}"}} {seconds!r}'
    assert last in text


def test_metrics_are_hidden_from_anonymous_users_and_wrong_tokens(client, db, settings):
    settings.SENTINEL_METRICS_TOKEN = "scrape-token"
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 404
    client.force_login(UserFactory())  # signed in, but not staff
    assert client.get("/metrics").status_code == 404


def test_anonymous_users_are_sent_to_login_not_shown_an_error(db):
    assert Client().get("/").status_code == 302


def test_a_malformed_api_rate_is_a_system_check_error(settings):
    from reporting.checks import check_api_rate

    settings.SENTINEL_API_RATE = "lots"

    assert [error.id for error in check_api_rate(None)] == ["reporting.E001"]
    settings.SENTINEL_API_RATE = "20/second"
    assert check_api_rate(None) == []


@pytest.mark.parametrize(
    ("fields", "shown"),
    [
        ({"tls_verify": False}, "not verified"),
        ({}, "verified against the system"),
        ({"connect_to": "203.0.113.7"}, "203.0.113.7"),
    ],
)
def test_the_monitor_page_shows_its_tls_trust_and_connect_to(browser, user, fields, shown):
    monitor = MonitorFactory(owner=user, url="https://shop.example.test/", **fields)

    page = browser.get(f"/dashboard/monitors/{monitor.pk}/").content.decode()

    assert shown in page


def test_a_ping_monitors_page_shows_its_loss_and_round_trip(browser, user, now):
    ping = MonitorFactory(
        owner=user, kind="ping", url="ping://router.example.test", ping_max_rtt_ms=150
    )
    messages = [
        (True, None, "0 of 3 echo requests lost (0 %), round trip min/avg/max 10/20/30 ms"),
        (
            False,
            FailureKind.LOSS,
            "2 of 3 echo requests lost (67 %, over the 50 % allowed), "
            "round trip min/avg/max 50/50/50 ms",
        ),
        (
            False,
            FailureKind.TIMEOUT,
            "3 of 3 echo requests lost (100 %): no echo reply within 10 s",
        ),
    ]
    store_results(
        [
            CheckResult(
                monitor_id=ping.pk,
                scheduled_at=now - dt.timedelta(minutes=index),
                started_at=now - dt.timedelta(minutes=index),
                duration_ms=20,
                ok=ok,
                failure=failure,
                error=message,
            )
            for index, (ok, failure, message) in enumerate(messages)
        ]
    )

    page = browser.get(f"/dashboard/monitors/{ping.pk}/").content.decode()

    # 9 sent, 4 answered: the mean of the answered ones is (3 * 20 + 50) / 4.
    assert "<strong>5 of 9</strong> echo requests lost (55.6 %)" in page
    assert "round trip min/avg/max <strong>10/27.5/50 ms</strong>" in page
    assert "round trip min/avg/max 10/20/30 ms" in page  # an ok check's own figures
    assert "<th>Echo requests</th><td>3 per check, 0.2 s apart</td>" in page
    assert "more than 50 % are lost (all lost: timeout), or the mean round trip is over 150 ms" in (
        page
    )
    assert "Expected status" not in page and "Record type" not in page


def test_a_ping_monitor_without_checks_says_so(browser, user):
    ping = MonitorFactory(owner=user, kind="ping", url="ping://router.example.test")

    page = browser.get(f"/dashboard/monitors/{ping.pk}/").content.decode()

    assert "No echo requests sent yet." in page
