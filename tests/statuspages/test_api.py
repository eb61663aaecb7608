from __future__ import annotations

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from monitors.models import Incident
from statuspages.models import PageIncident, StatusPage
from tests.factories import MaintenanceWindowFactory, MonitorFactory, StatusPageFactory


@pytest.fixture
def api(user, redis_client):
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_an_owner_creates_a_page_with_its_layout_and_domains_through_the_api(api, user):
    first, second = MonitorFactory.create_batch(2, owner=user)
    response = api.post(
        "/api/v1/status-pages/",
        {
            "slug": "acme",
            "title": "Acme",
            "access": "token",
            "groups": [
                {"name": "Core", "monitors": [{"monitor": second.pk, "display_name": "API"}]},
                {"name": "Edge", "monitors": [{"monitor": first.pk}]},
            ],
            "domains": ["Status.Acme.test"],
        },
        format="json",
    )

    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["groups"] == [
        {"name": "Core", "monitors": [{"monitor": second.pk, "display_name": "API"}]},
        {"name": "Edge", "monitors": [{"monitor": first.pk, "display_name": first.name}]},
    ]
    assert data["domains"] == ["status.acme.test"]
    assert data["url"] == "/status/acme/" and len(data["access_token"]) >= 20
    page = StatusPage.objects.get(slug="acme")
    assert page.owner == user

    # Reordering groups is sending the layout in the new order.
    reordered = api.patch(
        f"/api/v1/status-pages/{page.pk}/",
        {"groups": list(reversed(data["groups"]))},
        format="json",
    )
    assert [g["name"] for g in reordered.json()["groups"]] == ["Edge", "Core"]


def test_a_password_page_needs_a_password_and_never_echoes_it(api):
    refused = api.post("/api/v1/status-pages/", {"slug": "p1", "title": "P", "access": "password"})
    assert refused.status_code == 400 and "password" in refused.json()
    made = api.post(
        "/api/v1/status-pages/",
        {"slug": "p1", "title": "P", "access": "password", "password": "hunter22"},
    )
    assert made.status_code == 201
    assert "hunter22" not in made.content.decode() and "password" not in made.json()
    assert StatusPage.objects.get(slug="p1").password_matches("hunter22")


def test_a_monitor_of_another_owner_cannot_be_put_on_a_page_through_the_api(api, other_user):
    foreign = MonitorFactory(owner=other_user)
    response = api.post(
        "/api/v1/status-pages/",
        {
            "slug": "x1",
            "title": "X",
            "groups": [{"name": "G", "monitors": [{"monitor": foreign.pk}]}],
        },
        format="json",
    )
    assert response.status_code == 400
    assert "groups" in response.json()
    assert not StatusPage.objects.filter(slug="x1").exists()  # nothing half-saved


def test_owners_see_only_their_own_pages_and_incidents(api, other_user):
    theirs = StatusPageFactory(owner=other_user)
    incident = PageIncident.objects.create(page=theirs, title="t", started_at=timezone.now())
    assert api.get("/api/v1/status-pages/").json()["results"] == []
    assert api.get(f"/api/v1/status-pages/{theirs.pk}/").status_code == 404
    assert api.patch(f"/api/v1/status-pages/{theirs.pk}/", {"title": "mine"}).status_code == 404
    assert api.get(f"/api/v1/status-page-incidents/{incident.pk}/").status_code == 404
    assert (
        api.post(
            f"/api/v1/status-page-incidents/{incident.pk}/updates/",
            {"status": "resolved", "body": "x"},
        ).status_code
        == 404
    )
    foreign_monitor = MonitorFactory(owner=other_user)
    assert api.get(f"/api/v1/badges/{foreign_monitor.pk}/").status_code == 404


def test_an_owner_posts_an_incident_adds_updates_and_publishes_a_checker_incident(api, user):
    monitor = MonitorFactory(owner=user, name="db-primary")
    page = StatusPageFactory(owner=user)
    posted = api.post(
        f"/api/v1/status-pages/{page.pk}/incidents/",
        {"title": "Slow logins", "body": "Looking.", "impact": "major", "monitors": [monitor.pk]},
        format="json",
    )
    assert posted.status_code == 201, posted.json()
    incident_id = posted.json()["id"]
    update = api.post(
        f"/api/v1/status-page-incidents/{incident_id}/updates/",
        {"status": "resolved", "body": "Fixed **now**."},
    )
    assert update.status_code == 201
    got = api.get(f"/api/v1/status-page-incidents/{incident_id}/").json()
    assert got["status"] == "resolved" and got["resolved_at"]
    assert [u["status"] for u in got["updates"]] == ["resolved", "investigating"]
    assert got["monitors"] == [monitor.pk]

    source = Incident.objects.create(monitor=monitor, started_at=timezone.now())
    published = api.post(f"/api/v1/status-pages/{page.pk}/publish/", {"incident": source.pk})
    assert published.status_code == 201
    assert published.json()["source"] == source.pk and published.json()["status"] == "investigating"
    bad = api.post(f"/api/v1/status-pages/{page.pk}/publish/", {"incident": 999999})
    assert bad.status_code == 400 and "incident" in bad.json()


def test_a_monitors_badge_key_comes_from_the_api(api, user):
    monitor = MonitorFactory(owner=user)
    data = api.get(f"/api/v1/badges/{monitor.pk}/").json()
    assert data["status"] == f"/badge/{data['key']}/status.svg"
    assert str(monitor.pk) not in data["key"] or len(data["key"]) >= 20


def test_the_openapi_schema_documents_the_status_page_endpoints(api):
    schema = api.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").content
    for path in (
        b"/api/v1/status-pages/",
        b"/api/v1/status-pages/{id}/incidents/",
        b"/api/v1/status-pages/{id}/publish/",
        b"/api/v1/status-page-incidents/{id}/updates/",
        b"/api/v1/badges/{id}/",
    ):
        assert path in schema


def test_an_owner_shows_a_maintenance_window_on_a_page_with_a_description(
    api, user, other_user, client
):
    page = StatusPageFactory(owner=user, slug="maint")
    mine = MaintenanceWindowFactory(owner=user, name="DB upgrade")
    theirs = MaintenanceWindowFactory(owner=other_user)
    shown = api.post(
        f"/api/v1/status-pages/{page.pk}/maintenance/",
        {"window": mine.pk, "description": "Read-only for *ten* minutes."},
    )
    refused = api.post(f"/api/v1/status-pages/{page.pk}/maintenance/", {"window": theirs.pk})

    assert shown.status_code == 204
    assert refused.status_code == 400 and "window" in refused.json()
    html = client.get("/status/maint/").content.decode()
    assert "DB upgrade" in html and "<em>ten</em>" in html and "Maintenance in progress" in html
    api.post(f"/api/v1/status-pages/{page.pk}/maintenance/", {"window": mine.pk, "shown": False})
    assert "DB upgrade" not in client.get("/status/maint/").content.decode()
