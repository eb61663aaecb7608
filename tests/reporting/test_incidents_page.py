"""The monitor page's incidents and maintenance windows (issues 5 and 6)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from alerting.models import MaintenanceWindow
from monitors.models import Incident, Tag
from tests.factories import MaintenanceWindowFactory, MonitorFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser(client, user):
    client.force_login(user)
    return client


def _incident(monitor, *, started_at, ended_at=None, **fields) -> Incident:
    return Incident.objects.create(
        monitor=monitor,
        started_at=started_at,
        ended_at=ended_at,
        duration_seconds=None if ended_at is None else int((ended_at - started_at).total_seconds()),
        open_monitor_id=monitor.pk if ended_at is None else None,
        **fields,
    )


def _section(page: str) -> str:
    """The incidents card alone, so a match elsewhere on the page does not count."""
    start = page.index('id="incidents"')
    return page[start : page.index("</div>", start)]


def test_it_shows_an_open_and_a_closed_incident_newest_first(browser, user):
    monitor = MonitorFactory(owner=user)
    now = timezone.now()
    _incident(
        monitor,
        started_at=now - dt.timedelta(days=2),
        ended_at=now - dt.timedelta(days=2) + dt.timedelta(hours=1, minutes=5),
        first_failure_kind="timeout",
        first_failure_message="no answer in 10 s",
        checks_failed=33,
    )
    _incident(
        monitor,
        started_at=now - dt.timedelta(minutes=12),
        first_failure_kind="status",
        first_failure_message="expected 200-299, got 503",
        checks_failed=7,
    )

    section = _section(browser.get(f"/dashboard/monitors/{monitor.pk}/").content.decode())

    assert section.count('class="incident') == 2
    assert section.index("got 503") < section.index("no answer in 10 s")
    assert "ongoing" in section and "12 min" in section and ">7<" in section
    assert "1 h 5 min" in section and ">33<" in section
    assert f"/api/v1/incidents/?monitor={monitor.pk}" in section


def test_it_never_shows_another_users_incidents(browser, user, other_user):
    mine = MonitorFactory(owner=user)
    theirs = MonitorFactory(owner=other_user)
    _incident(theirs, started_at=timezone.now(), first_failure_message="their secret outage")

    page = browser.get(f"/dashboard/monitors/{mine.pk}/").content.decode()

    assert "their secret outage" not in page
    assert "No incidents recorded." in _section(page)
    assert browser.get(f"/dashboard/monitors/{theirs.pk}/").status_code == 404


def test_it_lists_at_most_twenty_incidents(browser, user):
    monitor = MonitorFactory(owner=user)
    start = timezone.now() - dt.timedelta(days=30)
    for n in range(25):
        at = start + dt.timedelta(hours=n)
        _incident(monitor, started_at=at, ended_at=at + dt.timedelta(minutes=3))

    section = _section(browser.get(f"/dashboard/monitors/{monitor.pk}/").content.decode())

    assert section.count('class="incident') == 20


def test_it_marks_current_and_upcoming_maintenance_and_hides_past_ones(browser, user):
    monitor = MonitorFactory(owner=user)
    monitor.tags.add(Tag.objects.create(name="db"))
    now = timezone.now()
    current = MaintenanceWindowFactory(
        owner=user,
        name="Database upgrade",
        starts_at=now - dt.timedelta(minutes=30),
        ends_at=now + dt.timedelta(minutes=30),
    )
    current.monitors.add(monitor)
    weekly = MaintenanceWindowFactory(
        owner=user,
        name="Weekly backups",
        starts_at=now - dt.timedelta(days=7, hours=-2),
        ends_at=now - dt.timedelta(days=7, hours=-3),
        repeat=MaintenanceWindow.Repeat.WEEKLY,
    )
    weekly.tags.add(Tag.objects.get(name="db"))
    past = MaintenanceWindowFactory(
        owner=user, starts_at=now - dt.timedelta(days=3), ends_at=now - dt.timedelta(days=2)
    )
    past.monitors.add(monitor)
    # Another user's window on the same (global) tag is theirs, not this monitor's.
    MaintenanceWindowFactory(name="Not yours", starts_at=now).tags.add(Tag.objects.get(name="db"))

    section = _section(browser.get(f"/dashboard/monitors/{monitor.pk}/").content.decode())

    assert "In maintenance now:</strong>\n    Database upgrade" in section
    next_backup = weekly.starts_at + dt.timedelta(days=7)
    assert "Maintenance planned:</strong>\n    Weekly backups" in section
    assert f"{next_backup:%Y-%m-%d %H:%M}" in section and "(every week)" in section
    assert past.name not in section and "Not yours" not in section


def test_it_marks_an_incident_that_began_in_maintenance(browser, user):
    monitor = MonitorFactory(owner=user)
    now = timezone.now()
    window = MaintenanceWindowFactory(
        owner=user,
        starts_at=now - dt.timedelta(days=1, hours=1),
        ends_at=now - dt.timedelta(days=1),
    )
    window.monitors.add(monitor)
    _incident(
        monitor,
        started_at=now - dt.timedelta(days=1, minutes=30),
        ended_at=now - dt.timedelta(days=1, minutes=20),
    )

    section = _section(browser.get(f"/dashboard/monitors/{monitor.pk}/").content.decode())

    assert '<span class="status status-paused">maintenance</span>' in section


# The page before incidents (session, user, monitor and tags, the reporting queries)
# took 12; the incidents add one and their maintenance windows four.
MONITOR_PAGE_QUERIES = 17


def test_the_page_query_count_does_not_grow_with_incidents_or_windows(
    browser, user, django_assert_max_num_queries
):
    def monitor_with(count: int):
        monitor = MonitorFactory(owner=user)
        tag = Tag.objects.create(name=f"tag{count}")
        monitor.tags.add(tag)
        start = timezone.now() - dt.timedelta(days=10)
        for n in range(count):
            at = start + dt.timedelta(hours=n)
            _incident(monitor, started_at=at, ended_at=at + dt.timedelta(minutes=5))
            window = MaintenanceWindowFactory(owner=user, starts_at=at + dt.timedelta(days=20))
            # Half reach the monitor directly, half through its tag.
            if n % 2:
                window.monitors.add(monitor)
            else:
                window.tags.add(tag)
        return monitor

    def queries_for(monitor) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert browser.get(f"/dashboard/monitors/{monitor.pk}/").status_code == 200
        return len(captured)

    few, many = monitor_with(2), monitor_with(30)

    assert queries_for(few) == queries_for(many)
    with django_assert_max_num_queries(MONITOR_PAGE_QUERIES):
        browser.get(f"/dashboard/monitors/{many.pk}/")


def test_next_period_follows_weekly_repeats_until_they_stop():
    start = dt.datetime(2026, 11, 2, 22, 0, tzinfo=dt.UTC)  # a Monday
    window = MaintenanceWindow(
        starts_at=start,
        ends_at=start + dt.timedelta(hours=2),
        repeat=MaintenanceWindow.Repeat.WEEKLY,
        repeat_until=start + dt.timedelta(days=14, hours=1),
    )
    week = dt.timedelta(days=7)

    assert window.next_period(start - week) == (start, start + dt.timedelta(hours=2))
    inside = start + week + dt.timedelta(hours=1)
    assert window.next_period(inside) == (start + week, start + week + dt.timedelta(hours=2))
    after = start + week + dt.timedelta(hours=3)
    # The third repeat is cut short by repeat_until, and nothing follows it.
    assert window.next_period(after) == (start + 2 * week, start + 2 * week + dt.timedelta(hours=1))
    assert window.next_period(start + 2 * week + dt.timedelta(hours=1)) is None


def _svgs(page: str) -> tuple[str, str]:
    """The latency chart and the daily uptime strip."""
    chart = page[page.index('<svg class="chart"') :]
    bars = page[page.index('<svg class="bars"') :]
    return chart[: chart.index("</svg>")], bars[: bars.index("</svg>")]


def test_the_charts_shade_the_monitors_maintenance_periods(browser, user):
    monitor, quiet = MonitorFactory(owner=user), MonitorFactory(owner=user)
    now = timezone.now()
    upgrade = MaintenanceWindowFactory(
        owner=user,
        name="Upgrade <db>",
        starts_at=now - dt.timedelta(days=2, hours=3),
        ends_at=now - dt.timedelta(days=2, hours=1),
    )
    upgrade.monitors.add(monitor)
    # Weekly, first three weeks and an hour ago: four periods in the 30-day chart.
    first = now - dt.timedelta(weeks=3, hours=1)
    MaintenanceWindowFactory(
        owner=user,
        name="Backups",
        starts_at=first,
        ends_at=first + dt.timedelta(minutes=30),
        repeat=MaintenanceWindow.Repeat.WEEKLY,
    ).monitors.add(monitor)

    chart, bars = _svgs(browser.get(f"/dashboard/monitors/{monitor.pk}/").content.decode())
    quiet_chart, quiet_bars = _svgs(
        browser.get(f"/dashboard/monitors/{quiet.pk}/").content.decode()
    )

    assert chart.count('class="maintenance"') == 1 + 4
    assert bars.count('class="maintenance"') == 1 + 4
    started = upgrade.starts_at
    assert f"Maintenance: Upgrade &lt;db&gt;, {started:%Y-%m-%d %H:%M}" in chart
    assert "Upgrade &lt;db&gt;" in bars and "<db>" not in chart
    assert chart.count("Maintenance: Backups") == 4
    assert 'class="maintenance"' not in quiet_chart + quiet_bars
    # The 24-hour chart has only this week's backups (an hour ago) in its range.
    day, _ = _svgs(browser.get(f"/dashboard/monitors/{monitor.pk}/?range=24h").content.decode())
    assert day.count('class="maintenance"') == 1 and "Maintenance: Backups" in day


def test_the_charts_never_shade_another_users_window(browser, user, other_user):
    monitor = MonitorFactory(owner=user)
    tag = Tag.objects.create(name="shared")
    monitor.tags.add(tag)
    now = timezone.now()
    theirs = MaintenanceWindowFactory(
        owner=other_user,
        name="Their secret migration",
        starts_at=now - dt.timedelta(days=1, hours=2),
        ends_at=now - dt.timedelta(days=1),
    )
    theirs.tags.add(tag)
    theirs.monitors.add(monitor)  # even named directly: it is not the owner's window

    page = browser.get(f"/dashboard/monitors/{monitor.pk}/").content.decode()

    chart, bars = _svgs(page)
    assert 'class="maintenance"' not in chart + bars
    assert "Their secret migration" not in page


def test_periods_between_lists_the_occurrences_clipped_to_the_range():
    start = dt.datetime(2026, 11, 2, 22, 0, tzinfo=dt.UTC)
    window = MaintenanceWindow(
        starts_at=start,
        ends_at=start + dt.timedelta(hours=2),
        repeat=MaintenanceWindow.Repeat.WEEKLY,
        repeat_until=start + dt.timedelta(days=14, hours=1),
    )
    week = dt.timedelta(days=7)
    since, until = start + dt.timedelta(hours=1), start + 5 * week

    assert window.periods_between(since, until) == [
        (since, start + dt.timedelta(hours=2)),
        (start + week, start + week + dt.timedelta(hours=2)),
        (start + 2 * week, start + 2 * week + dt.timedelta(hours=1)),
    ]
    assert window.periods_between(start - week, start) == []


def test_maintenance_periods_are_shown_on_their_windows_clock(browser, user):
    monitor = MonitorFactory(owner=user)
    # Sunday 02:00-03:00 in Berlin, entered in January (01:00-02:00 UTC then).
    first = dt.datetime(2026, 1, 4, 1, tzinfo=dt.UTC)
    MaintenanceWindowFactory(
        owner=user,
        name="Backups",
        time_zone="Europe/Berlin",
        starts_at=first,
        ends_at=first + dt.timedelta(hours=1),
        repeat=MaintenanceWindow.Repeat.WEEKLY,
    ).monitors.add(monitor)

    page = browser.get(f"/dashboard/monitors/{monitor.pk}/").content.decode()

    section = _section(page)
    assert ":</strong>\n    Backups, " in section  # planned, or now on a Sunday night
    # Whatever the season (CET or CEST): 02:00-03:00 on Berlin's clock, not UTC.
    assert " 02:00 to 03:00 CE" in section and "(Europe/Berlin)" in section
    chart, _ = _svgs(page)
    # The 30-day chart shades four or five Sundays; at most one of them is the night
    # the clocks go forward (03:00-04:00).
    assert chart.count(" 02:00 to 03:00 CE") >= 3
