from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from sentinel import views

admin.site.site_header = "UptimeSentinel operators"
admin.site.site_title = "UptimeSentinel"

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/v1/alerting/", include("alerting.urls")),
]
