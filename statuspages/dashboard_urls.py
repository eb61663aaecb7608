"""The owner's status page screens, mounted at /dashboard/status-pages/."""

from __future__ import annotations

from django.urls import path

from statuspages import dashboard

urlpatterns = [
    path("", dashboard.page_list, name="statuspages-dashboard"),
    path("new/", dashboard.page_edit, name="statuspages-new"),
    path("<int:pk>/", dashboard.page_manage, name="statuspages-manage"),
    path("<int:pk>/edit/", dashboard.page_edit, name="statuspages-edit"),
    path("<int:pk>/incidents/", dashboard.incident_post, name="statuspages-incident-post"),
    path(
        "<int:pk>/incidents/<int:incident_pk>/updates/",
        dashboard.incident_update,
        name="statuspages-incident-update",
    ),
    path("<int:pk>/maintenance/", dashboard.maintenance_show, name="statuspages-maintenance"),
    path(
        "<int:pk>/publish/<int:incident_pk>/",
        dashboard.incident_publish,
        name="statuspages-incident-publish",
    ),
]
