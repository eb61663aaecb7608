from __future__ import annotations

import datetime as dt
import logging
import re
import xml.etree.ElementTree as ET

import orjson
import pytest
from django.db import connections
from django.utils import timezone

from monitors.models import Incident
from statuspages.domains import domains
from statuspages.models import PageIncident, StatusPage
from statuspages.services import (
    monitor_badge_key,
    page_domains_set,
    page_incident_post,
    page_incident_publish,
    page_incident_update,
    page_layout_set,
)
from tests.factories import MaintenanceWindowFactory, MonitorFactory, StatusPageFactory
from tests.statuspages.conftest import set_status


def daily(results, monitor, today, days=90):
    """(checks, failures) per UTC day, computed from the stored results."""
    counts: dict[dt.date, tuple[int, int]] = {}
    for r in results:
        if r.monitor_id == monitor.pk:
            day = r.scheduled_at.astimezone(dt.UTC).date()
            checks, failures = counts.get(day, (0, 0))
            counts[day] = (checks + 1, failures + (not r.ok))
    first = today - dt.timedelta(days=days - 1)
    return [counts.get(first + dt.timedelta(days=i), (0, 0)) for i in range(days)]


def test_it_shows_each_monitor_under_its_public_name_with_uptime_and_90_daily_bars(
    client, shop, now
):
    _, monitors, results = shop
    response = client.get("/status/shop/")
    html = response.content.decode()

    assert response.status_code == 200
    assert "Backend" in html and "Frontend" in html and "API" in html and "Website" in html
    rows = re.findall(r'<li class="monitor".*?</li>', html, flags=re.S)
    assert len(rows) == 2
    api_row = rows[0]
    bars = re.findall(r'<i class="b(\d)" title="([^"]+)"', api_row)
    assert len(bars) == 90
    expected = daily(results, monitors["api"], now.astimezone(dt.UTC).date())
    first = next(i for i, (checks, _) in enumerate(expected) if checks)
    failed = next(i for i, (_, failures) in enumerate(expected) if failures)
    checks, failures = expected[failed]
    percent = 100 * (checks - failures) / checks
    assert bars[failed][1].endswith(f"{percent:.2f} % ({failures}/{checks} failed)")
    clean = next(i for i, (c, f) in enumerate(expected) if c and not f)
    assert bars[clean] == ("1", bars[clean][1]) and bars[clean][1].endswith(" 100 %")
    assert bars[first - 1][0] == "0" and bars[first - 1][1].endswith("no data")
    total = [c for c in expected[-30:]]
    uptime_30d = 100 * sum(c - f for c, f in total) / sum(c for c, _ in total)
    assert f"30 d {uptime_30d:.2f} %" in api_row


def test_it_never_shows_urls_names_owners_or_error_texts_unless_the_owner_chooses(
    client, shop, user
):
    page, monitors, _ = shop
    Incident.objects.create(
        monitor=monitors["web"],
        started_at=timezone.now(),
        first_failure_message="connection refused by 10.0.0.7",
        open_monitor_id=monitors["web"].pk,
    )
    html = client.get("/status/shop/").content.decode()
    body = client.get("/status/shop/summary.json").content.decode()
    for text in (html, body):
        assert "127.0.0.1:9" not in text
        assert "api-internal-7" not in text and "web-prod" not in text
        assert user.username not in text
        assert "connection refused" not in text

    StatusPage.objects.filter(pk=page.pk).update(
        show_urls=True, show_errors=True, updated_at=timezone.now()
    )
    html = client.get("/status/shop/").content.decode()
    assert "http://127.0.0.1:9/web" in html
    assert "connection refused by 10.0.0.7" in html


def test_a_monitor_not_on_the_page_is_invisible_through_page_json_feed_and_badges(client, shop):
    page, monitors, _ = shop
    hidden = monitors["hidden"]
    page_incident_post(page=page, title="Slow API", body="Looking into it.", monitor_ids=[])
    answers = [
        client.get("/status/shop/").content,
        client.get("/status/shop/summary.json").content,
        client.get("/status/shop/feed.atom").content,
        client.get(f"/badge/page/{page.badge_key}.svg").content,
    ]
    for content in answers:
        text = content.decode()
        assert "hidden-backoffice" not in text and "/hidden" not in text
    data = orjson.loads(answers[1])
    names = [m["name"] for g in data["groups"] for m in g["monitors"]]
    assert names == ["API", "Website"]
    # Its badges are reachable only by its own random key, never by its id.
    assert client.get(f"/badge/{hidden.pk}/status.svg").status_code == 404


def test_badge_keys_are_random_and_not_derived_from_monitor_ids(db, user):
    monitors = MonitorFactory.create_batch(3, owner=user)
    keys = [monitor_badge_key(monitor=m) for m in monitors]
    assert len(set(keys)) == 3
    for monitor, key in zip(monitors, keys, strict=True):
        assert len(key) >= 20 and str(monitor.pk) != key
        assert monitor_badge_key(monitor=monitor) == key  # stable once made
    pages = StatusPageFactory.create_batch(2, owner=user)
    assert pages[0].badge_key != pages[1].badge_key and len(pages[0].badge_key) >= 20


def test_monitor_badges_are_svg_with_cache_headers(client, shop):
    _, monitors, _ = shop
    key = monitor_badge_key(monitor=monitors["api"])
    status = client.get(f"/badge/{key}/status.svg")
    uptime = client.get(f"/badge/{key}/uptime.svg?window=90d")
    latency = client.get(f"/badge/{key}/latency.svg")

    for response in (status, uptime, latency):
        assert response.status_code == 200
        assert response["Content-Type"] == "image/svg+xml"
        assert "max-age=60" in response["Cache-Control"] and "public" in response["Cache-Control"]
        ET.fromstring(response.content)  # noqa: S314 (well-formed; our own response)
    assert b"operational" in status.content
    assert re.search(rb"uptime 90d.*\d+\.\d\d%", uptime.content)
    assert re.search(rb"\d+ ms", latency.content)
    assert client.get(f"/badge/{key}/uptime.svg?window=2y").status_code == 404
    assert client.get(f"/badge/{key}/other.svg").status_code == 404


@pytest.mark.parametrize("access", ["password", "token"])
def test_a_private_page_without_its_password_or_token_answers_404(client, shop, access):
    page, _, _ = shop
    page.access = access
    page.set_password("open sesame")
    page.save()
    for path in ("", "summary.json", "feed.atom", "logo", "?fragment=1"):
        response = client.get(f"/status/shop/{path}")
        assert response.status_code == 404, path
        assert b"Website" not in response.content
    token = client.get(f"/status/shop/?token={page.access_token}")
    assert token.status_code == 200 and b"Website" in token.content
    assert "no-store" in token["Cache-Control"]
    assert client.get(f"/status/shop/summary.json?token={page.access_token}").status_code == 200
    assert client.get("/status/shop/?token=wrong").status_code == 404


def test_a_password_page_opens_for_its_password_only_and_closes_when_it_changes(client, shop):
    page, _, _ = shop
    page.access = StatusPage.Access.PASSWORD
    page.set_password("open sesame")
    page.save()

    wrong = client.post("/status/shop/unlock/", {"password": "guess"})
    assert wrong.status_code == 404
    assert client.get("/status/shop/").status_code == 404
    # The same answer as for a page that does not exist: nothing is confirmed.
    assert client.get("/status/nothing-here/").status_code == 404

    assert client.post("/status/shop/unlock/", {"password": "open sesame"}).status_code == 302
    assert client.get("/status/shop/").status_code == 200
    assert client.get("/status/shop/summary.json").status_code == 200

    page.set_password("new secret")
    page.save()
    assert client.get("/status/shop/").status_code == 404


def test_a_custom_domain_serves_its_own_page_and_never_another(client, shop, user, settings):
    page, monitors, _ = shop
    other = StatusPageFactory(owner=user, slug="other", title="Other status")
    page_layout_set(
        page=other, layout=[{"name": "X", "monitors": [{"monitor": monitors["hidden"].pk}]}]
    )
    page_domains_set(page=page, names=["status.shop.test"])
    settings.ALLOWED_HOSTS = ["testserver", "status.shop.test"]

    mine = client.get("/", HTTP_HOST="status.shop.test")
    assert mine.status_code == 200 and b"Shop status" in mine.content
    assert client.get("/summary.json", HTTP_HOST="status.shop.test").status_code == 200
    for path in ("/status/other/", "/status/other/summary.json", "/dashboard/", "/api/v1/"):
        response = client.get(path, HTTP_HOST="status.shop.test")
        assert response.status_code == 404, path
        assert b"Other status" not in response.content
    with pytest.raises(Exception, match="belongs to another page"):
        page_domains_set(page=other, names=["status.shop.test"])


# transactional_db: closing the connection inside a test transaction would lose it.
@pytest.mark.django_db(transaction=True)
def test_a_custom_domain_keeps_its_page_while_mysql_is_away_and_other_hosts_get_their_answer(
    shop, settings, caplog
):
    page, _, _ = shop
    page_domains_set(page=page, names=["status.shop.test"])
    settings.ALLOWED_HOSTS = ["testserver", "status.shop.test"]
    assert domains.slug_for("status.shop.test") == "shop"

    domains.forget()
    connection = connections["default"]
    original = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = "1"  # a closed port: MySQL is away
    try:
        with caplog.at_level(logging.WARNING, logger="statuspages.domains"):
            kept = domains.slug_for("status.shop.test")
            unknown = domains.slug_for("example.test")
    finally:
        connection.close()
        connection.settings_dict["PORT"] = original

    assert (kept, unknown) == ("shop", None)
    lines = [r.getMessage() for r in caplog.records if r.name == "statuspages.domains"]
    assert len(lines) == 1 and "MySQL" in lines[0] and "domains last read" in lines[0]


@pytest.mark.parametrize(
    "markdown",
    [
        "<script>alert('x')</script>",
        '<img src="x" onerror="alert(1)">',
        "[click](javascript:alert(1))",
        '<a href="JaVaScRiPt:alert(1)">click</a>',
        "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        '<div onmouseover="alert(1)">hover</div>',
        '<svg onload="alert(1)"></svg>',
        "![x](data:image/svg+xml,<svg onload=alert(1)>)",
    ],
)
def test_markdown_with_script_handlers_and_javascript_or_data_urls_is_neutralised(
    client, shop, markdown
):
    page, _, _ = shop
    incident = page_incident_post(
        page=page, title="Outage", body=f"**Bold** text. {markdown}", monitor_ids=[]
    )
    page_incident_update(incident=incident, status="resolved", body=markdown)
    root = ET.fromstring(client.get("/status/shop/feed.atom").content)  # noqa: S314 (our own response)
    feed_html = " ".join(e.text or "" for e in root.iter("{http://www.w3.org/2005/Atom}summary"))
    page_html = client.get("/status/shop/").content.decode()
    for text in (page_html.lower(), feed_html.lower()):
        assert "alert" not in text
        assert "onerror" not in text and "onload" not in text and "onmouseover" not in text
        assert "javascript:" not in text
        assert "data:text/html" not in text and "data:image" not in text
    html = client.get("/status/shop/").content.decode()
    assert "<strong>Bold</strong>" in html
    assert html.count("<script>") == 1  # the page's own refresh script only


def test_the_banner_follows_monitors_incidents_and_maintenance(client, shop, user):
    page, monitors, _ = shop

    def banner():
        page.refresh_from_db()
        data = orjson.loads(client.get("/status/shop/summary.json").content)
        return data["status"]

    assert banner() == "partial_outage"  # the website is down
    set_status(monitors["web"], "up")
    page.touch()
    assert banner() == "operational"
    incident = page_incident_post(page=page, title="Slow", body="Slow pages.", impact="minor")
    assert banner() == "degraded"
    page_incident_update(incident=incident, status="resolved", body="Fixed.")
    window = MaintenanceWindowFactory(owner=user)
    window.monitors.add(monitors["api"])
    page.touch()
    assert banner() == "maintenance"
    set_status(monitors["api"], "down")
    set_status(monitors["web"], "down")
    page.touch()
    assert banner() == "major_outage"


def test_summary_json_is_read_only_cacheable_and_complete(client, shop):
    page, _, _ = shop
    page_incident_post(page=page, title="Checkout errors", body="Some fail.", impact="major")
    response = client.get("/status/shop/summary.json")
    data = orjson.loads(response.content)

    assert response["Content-Type"] == "application/json"
    assert "public" in response["Cache-Control"] and "max-age=30" in response["Cache-Control"]
    assert client.post("/status/shop/summary.json").status_code == 405
    assert data["page"] == {"slug": "shop", "title": "Shop status"}
    assert data["status"] == "partial_outage"
    api = data["groups"][0]["monitors"][0]
    assert set(api) == {"name", "status", "uptime", "latency_ms", "daily_uptime"}
    assert len(api["daily_uptime"]) == 90
    assert data["incidents"][0]["title"] == "Checkout errors"
    assert data["incidents"][0]["updates"][0]["body"] == "Some fail."


def test_the_atom_feed_lists_the_pages_incidents_with_their_updates(client, shop):
    page, _, _ = shop
    incident = page_incident_post(page=page, title="DNS trouble", body="Resolvers fail.")
    page_incident_update(incident=incident, status="identified", body="A bad zone push.")
    response = client.get("/status/shop/feed.atom")
    root = ET.fromstring(response.content)  # noqa: S314 (our own response)
    ns = {"a": "http://www.w3.org/2005/Atom"}
    entries = root.findall("a:entry", ns)

    assert response["Content-Type"].startswith("application/atom+xml")
    assert [e.findtext("a:title", "", ns) for e in entries] == ["DNS trouble (Identified)"]
    summary = entries[0].findtext("a:summary", "", ns)
    assert "A bad zone push." in summary and "Resolvers fail." in summary


def test_the_page_shows_its_active_incidents_and_paginates_the_history(client, shop, now):
    page, _, _ = shop
    for n in range(12):
        past = page_incident_post(
            page=page, title=f"Past {n:02d}", body="Done.", at=now - dt.timedelta(days=n + 1)
        )
        page_incident_update(incident=past, status="resolved", body="Over.", at=now)
    page_incident_post(page=page, title="Ongoing trouble", body="We look.")

    first = client.get("/status/shop/").content.decode()
    second = client.get("/status/shop/?page=2").content.decode()
    assert "Ongoing trouble" in first.split('id="history"')[0]
    assert "Past 00" in first and "Past 09" in first and "Past 10" not in first
    assert "Past 10" in second and "Past 11" in second and "page 2 of 2" in second


def test_a_checker_incident_is_published_to_a_page_in_one_action(client, shop, now):
    page, monitors, _ = shop
    source = Incident.objects.create(
        monitor=monitors["web"],
        started_at=now - dt.timedelta(hours=1),
        ended_at=now,
        first_failure_message="TLS handshake failed at 10.1.2.3",
    )
    posted = page_incident_publish(page=page, source=source)

    assert posted.title == "Website unavailable" and posted.status == "resolved"
    assert list(posted.monitors.all()) == [monitors["web"]]
    assert [u.status for u in posted.updates.order_by("created_at")] == [
        "investigating",
        "resolved",
    ]
    html = client.get("/status/shop/").content.decode()
    assert "Website unavailable" in html and "10.1.2.3" not in html


def test_a_monitor_of_another_owner_cannot_be_put_on_a_page(shop, other_user):
    page, _, _ = shop
    foreign = MonitorFactory(owner=other_user)
    with pytest.raises(Exception, match="No such monitor"):
        page_layout_set(page=page, layout=[{"name": "G", "monitors": [{"monitor": foreign.pk}]}])
    with pytest.raises(Exception, match="No such monitor"):
        page_incident_post(page=page, title="x", body="y", monitor_ids=[foreign.pk])
    source = Incident.objects.create(monitor=foreign, started_at=timezone.now())
    with pytest.raises(Exception, match="No such monitor"):
        page_incident_publish(page=page, source=source)
    assert PageIncident.objects.filter(page=page).count() == 0


def test_the_live_part_refreshes_alone_and_the_page_works_without_javascript(client, shop):
    whole = client.get("/status/shop/").content.decode()
    fragment = client.get("/status/shop/?fragment=1").content.decode()
    assert "<html" not in fragment and 'class="banner' in fragment
    # The served page already holds everything the script would fetch.
    assert fragment.strip() in whole
    assert 'data-src="?fragment=1"' in whole or 'data-src="/status/shop/?fragment=1"' in whole


def test_password_guessing_is_cut_off_after_ten_wrong_tries(client, shop):
    page, _, _ = shop
    page.access = StatusPage.Access.PASSWORD
    page.set_password("open sesame")
    page.save()
    for n in range(10):
        assert client.post("/status/shop/unlock/", {"password": f"guess {n}"}).status_code == 404
    assert client.post("/status/shop/unlock/", {"password": "open sesame"}).status_code == 404
    assert client.get("/status/shop/").status_code == 404
