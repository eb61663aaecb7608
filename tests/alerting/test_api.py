"""The incident list of the API: the one access rule, and its parameters checked like
a request body."""

from __future__ import annotations

import datetime as dt

import pytest
from rest_framework.test import APIClient

from monitors.models import Incident
from tests.factories import MonitorFactory, UserFactory

STARTED = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def incident(monitor, *, minutes: int, open_: bool = False) -> Incident:
    return Incident.objects.create(
        monitor=monitor,
        started_at=STARTED + dt.timedelta(minutes=minutes),
        ended_at=None if open_ else STARTED + dt.timedelta(minutes=minutes + 5),
        open_monitor_id=monitor.pk if open_ else None,
    )


@pytest.mark.django_db
def test_owners_see_their_incidents_and_staff_see_every_one():
    mine, theirs = MonitorFactory(), MonitorFactory()
    own = incident(mine, minutes=0)
    foreign = incident(theirs, minutes=1)
    staff = UserFactory(is_staff=True)

    owner_view = client_for(mine.owner).get("/api/v1/alerting/incidents").json()
    staff_view = client_for(staff).get("/api/v1/alerting/incidents").json()

    assert [row["id"] for row in owner_view] == [own.pk]
    assert [row["id"] for row in staff_view] == [foreign.pk, own.pk]  # newest first


@pytest.mark.django_db
def test_it_filters_by_monitor_and_open_and_limits():
    monitor = MonitorFactory()
    other = MonitorFactory(owner=monitor.owner)
    closed = incident(monitor, minutes=0)
    still_open = incident(monitor, minutes=10, open_=True)
    incident(other, minutes=20)
    api = client_for(monitor.owner)

    by_monitor = api.get("/api/v1/alerting/incidents", {"monitor": monitor.pk}).json()
    only_open = api.get("/api/v1/alerting/incidents", {"open": "true"}).json()
    newest = api.get("/api/v1/alerting/incidents", {"monitor": monitor.pk, "limit": 1}).json()

    assert [row["id"] for row in by_monitor] == [still_open.pk, closed.pk]
    assert [row["id"] for row in only_open] == [still_open.pk]
    assert [row["id"] for row in newest] == [still_open.pk]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "field"),
    [({"monitor": "x"}, "monitor"), ({"limit": "0"}, "limit"), ({"limit": "201"}, "limit")],
)
def test_a_bad_parameter_is_a_400_naming_it(params, field):
    response = client_for(MonitorFactory().owner).get("/api/v1/alerting/incidents", params)

    assert response.status_code == 400
    assert field in response.json()


@pytest.mark.django_db
def test_signed_out_callers_are_refused():
    assert APIClient().get("/api/v1/alerting/incidents").status_code in (401, 403)
