"""Maintenance windows in the admin are entered and shown on their own clocks."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from alerting.models import MaintenanceWindow
from tests.factories import MaintenanceWindowFactory

pytestmark = pytest.mark.django_db

ADD = reverse("admin:alerting_maintenancewindow_add")


@pytest.fixture
def admin_client(client, operator):
    client.force_login(operator)
    return client


def form(owner, **changes: str) -> dict[str, str]:
    data = {
        "name": "Backups",
        "owner": str(owner.pk),
        "time_zone": "Europe/Berlin",
        "starts_at_0": "2026-07-05",
        "starts_at_1": "02:00:00",
        "ends_at_0": "2026-07-05",
        "ends_at_1": "03:00:00",
        "repeat": "weekly",
        "repeat_until_0": "",
        "repeat_until_1": "",
        "_save": "Save",
    }
    return {**data, **changes}


def test_times_are_entered_on_the_windows_clock(admin_client, user):
    response = admin_client.post(ADD, form(user))

    assert response.status_code == 302, response.content.decode()[-2000:]
    window = MaintenanceWindow.objects.get()
    # 02:00-03:00 CEST is 00:00-01:00 UTC.
    assert (window.starts_at, window.ends_at) == (
        dt.datetime(2026, 7, 5, 0, tzinfo=dt.UTC),
        dt.datetime(2026, 7, 5, 1, tzinfo=dt.UTC),
    )
    assert window.time_zone == "Europe/Berlin"


def test_a_time_the_clocks_skip_is_refused_on_its_field(admin_client, user):
    response = admin_client.post(
        ADD, form(user, starts_at_0="2026-03-29", starts_at_1="02:30", ends_at_0="2026-03-29")
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["starts_at"]
    assert "2026-03-29 02:30 does not exist in Europe/Berlin" in errors["starts_at"][0]
    assert not MaintenanceWindow.objects.exists()


def test_an_unknown_time_zone_is_refused_on_its_field(admin_client, user):
    response = admin_client.post(ADD, form(user, time_zone="Mars/Olympus_Mons"))

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["time_zone"]
    assert "not a time zone" in errors["time_zone"][0]


def test_the_change_form_and_the_list_show_the_windows_clock(admin_client, user):
    window = MaintenanceWindowFactory(
        owner=user,
        time_zone="America/New_York",
        starts_at=dt.datetime(2026, 7, 5, 6, tzinfo=dt.UTC),
        ends_at=dt.datetime(2026, 7, 5, 7, tzinfo=dt.UTC),
    )

    change = admin_client.get(reverse("admin:alerting_maintenancewindow_change", args=[window.pk]))
    listing = admin_client.get(reverse("admin:alerting_maintenancewindow_changelist"))

    assert 'name="starts_at_1" value="02:00:00"' in change.content.decode()
    assert "2026-07-05 02:00 to 03:00 EDT (America/New_York)" in listing.content.decode()
