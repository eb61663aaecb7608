from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from reporting.views import metrics
from sentinel import views
from statuspages.urls import badge_urlpatterns

admin.site.site_header = "UptimeSentinel operators"
admin.site.site_title = "UptimeSentinel"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="dashboard", permanent=False)),
    path("healthz", views.healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),
    path("dashboard/status-pages/", include("statuspages.dashboard_urls")),
    path("dashboard/", include("reporting.urls")),
    path("api/v1/", include("reporting.api.urls")),
    path("api/v1/", include("statuspages.api_urls")),
    path("admin/", admin.site.urls),
    path("api/v1/alerting/", include("alerting.urls")),
    path("status/", include("statuspages.urls")),
    path("badge/", include(badge_urlpatterns)),
]
