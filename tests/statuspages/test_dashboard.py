from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from monitors.models import Incident
from statuspages.models import PageIncident, StatusPage
from tests.factories import MonitorFactory, StatusPageFactory

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


def layout_post(rows, groups):
    data = {
        "groups-TOTAL_FORMS": str(len(groups)),
        "groups-INITIAL_FORMS": "0",
        "entries-TOTAL_FORMS": str(len(rows)),
        "entries-INITIAL_FORMS": "0",
    }
    for i, (name, order) in enumerate(groups):
        data |= {f"groups-{i}-name": name, f"groups-{i}-order": str(order)}
    for i, (monitor, group, public, order) in enumerate(rows):
        data |= {
            f"entries-{i}-monitor": str(monitor),
            f"entries-{i}-group": group,
            f"entries-{i}-display_name": public,
            f"entries-{i}-order": str(order),
        }
    return data


def test_an_owner_creates_a_page_with_a_logo_and_lays_it_out_in_the_dashboard(signed_in, user):
    a, b = MonitorFactory.create_batch(2, owner=user)
    response = signed_in.post(
        "/dashboard/status-pages/new/",
        {
            "slug": "acme",
            "title": "Acme",
            "theme": "dark",
            "access": "public",
            "show_response_times": "on",
            "domains": "status.acme.test",
            "logo_file": SimpleUploadedFile("logo.png", PNG, content_type="image/png"),
        },
    )
    page = StatusPage.objects.get(slug="acme")
    assert response.status_code == 302 and page.owner == user
    assert page.logo_type == "image/png" and page.domain_names() == ["status.acme.test"]

    saved = signed_in.post(
        f"/dashboard/status-pages/{page.pk}/",
        layout_post(
            [(a.pk, "Web", "Shop", 1), (b.pk, "API", "Public API", 0)], [("Web", 1), ("API", 0)]
        ),
    )
    assert saved.status_code == 302
    assert page.layout() == [
        {"name": "API", "monitors": [{"monitor": b.pk, "display_name": "Public API"}]},
        {"name": "Web", "monitors": [{"monitor": a.pk, "display_name": "Shop"}]},
    ]
    manage = signed_in.get(f"/dashboard/status-pages/{page.pk}/")
    assert manage.status_code == 200 and b"Public API" in manage.content
    assert signed_in.get("/status/acme/logo").content == PNG


def test_a_logo_of_the_wrong_type_or_size_is_refused_naming_the_field(signed_in):
    for upload in (
        SimpleUploadedFile("x.svg", b"<svg onload='alert(1)'/>", content_type="image/svg+xml"),
        SimpleUploadedFile("big.png", PNG + b"\x00" * 300 * 1024, content_type="image/png"),
    ):
        response = signed_in.post(
            "/dashboard/status-pages/new/",
            {
                "slug": "logo-test",
                "title": "L",
                "theme": "light",
                "access": "public",
                "logo_file": upload,
            },
        )
        assert response.status_code == 200
        assert response.context["form"].errors["logo_file"]
    assert not StatusPage.objects.filter(slug="logo-test").exists()


def test_a_monitor_of_another_owner_cannot_be_chosen_in_the_dashboard(signed_in, user, other_user):
    page = StatusPageFactory(owner=user)
    foreign = MonitorFactory(owner=other_user)
    response = signed_in.post(
        f"/dashboard/status-pages/{page.pk}/", layout_post([(foreign.pk, "G", "", 0)], [])
    )
    assert response.status_code == 200
    assert page.layout() == []


def test_another_owners_page_is_a_404_in_the_dashboard(signed_in, other_user):
    theirs = StatusPageFactory(owner=other_user)
    for path in ("", "edit/"):
        assert signed_in.get(f"/dashboard/status-pages/{theirs.pk}/{path}").status_code == 404
    posted = signed_in.post(
        f"/dashboard/status-pages/{theirs.pk}/incidents/",
        {"title": "x", "status": "investigating", "impact": "minor", "body": "y"},
    )
    assert posted.status_code == 404
    assert theirs.title.encode() not in signed_in.get("/dashboard/status-pages/").content


def test_an_owner_posts_updates_and_publishes_incidents_from_the_dashboard(signed_in, user):
    monitor = MonitorFactory(owner=user, name="db")
    page = StatusPageFactory(owner=user)
    signed_in.post(
        f"/dashboard/status-pages/{page.pk}/",
        layout_post([(monitor.pk, "Data", "Database", 0)], []),
    )
    signed_in.post(
        f"/dashboard/status-pages/{page.pk}/incidents/",
        {
            "title": "Replication lag",
            "status": "identified",
            "impact": "minor",
            "monitors": [monitor.pk],
            "body": "Lag.",
        },
    )
    incident = PageIncident.objects.get(page=page)
    assert incident.status == "identified" and incident.monitor_ids == [monitor.pk]
    signed_in.post(
        f"/dashboard/status-pages/{page.pk}/incidents/{incident.pk}/updates/",
        {"status": "resolved", "body": "Caught up."},
    )
    incident.refresh_from_db()
    assert incident.status == "resolved" and incident.resolved_at is not None

    source = Incident.objects.create(monitor=monitor, started_at=timezone.now())
    signed_in.post(f"/dashboard/status-pages/{page.pk}/publish/{source.pk}/")
    published = PageIncident.objects.get(page=page, source=source)
    assert published.title == "Database unavailable"
