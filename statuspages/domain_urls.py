"""The URLs of a request that came in on a page's custom domain: that page's views
and nothing else (statuspages.middleware sets this URLconf), so a custom domain never
serves another page, the dashboard or the API."""

from __future__ import annotations

from django.urls import path

from statuspages import views

urlpatterns = [
    path("", views.page_view, name="domain-statuspage"),
    path("unlock/", views.page_unlock_view, name="domain-statuspage-unlock"),
    path("summary.json", views.summary_view, name="domain-statuspage-summary"),
    path("feed.atom", views.page_feed, name="domain-statuspage-feed"),
    path("logo", views.logo_view, name="domain-statuspage-logo"),
]
