"""Public status page URLs, mounted at /status/ (and badges at /badge/)."""

from __future__ import annotations

from django.urls import path

from statuspages import views

urlpatterns = [
    path("<slug:slug>/", views.page_view, name="statuspage"),
    path("<slug:slug>/unlock/", views.page_unlock_view, name="statuspage-unlock"),
    path("<slug:slug>/summary.json", views.summary_view, name="statuspage-summary"),
    path("<slug:slug>/feed.atom", views.page_feed, name="statuspage-feed"),
    path("<slug:slug>/logo", views.logo_view, name="statuspage-logo"),
]

badge_urlpatterns = [
    path("page/<str:key>.svg", views.page_badge, name="statuspage-badge"),
    path(
        "<str:key>/<str:kind>.svg",
        views.monitor_badge,
        name="monitor-badge",
    ),
]
