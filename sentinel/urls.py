from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.contrib.admin import AdminSite
from django.urls import include, path
from django.views.generic import RedirectView
from django_otp.admin import OTPAdminSite

from reporting.views import metrics
from sentinel import views
from statuspages.urls import badge_urlpatterns

admin.site.site_header = "UptimeSentinel operators"
admin.site.site_title = "UptimeSentinel"
handler400 = views.bad_request
handler404 = views.not_found


def admin_two_factor(*, required: bool) -> None:
    """Make the admin let staff in only with a verified second factor (a session signed
    in with a code, or a code in the admin's own login form), or not. Swapping the
    default site's class is django-otp's documented way (``OTPAdminSite``)."""
    admin.site.__class__ = OTPAdminSite if required else AdminSite


admin_two_factor(required=settings.SENTINEL_ADMIN_REQUIRE_2FA)

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="dashboard", permanent=False)),
    path("healthz", views.healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),
    path("dashboard/status-pages/", include("statuspages.dashboard_urls")),
    path("dashboard/projects/<int:pk>/audit/", views.project_audit, name="project-audit"),
    path("dashboard/projects/", include("projects.urls")),
    path("dashboard/", include("reporting.urls")),
    path("dashboard/", include("alerting.dashboard_urls")),
    path("account/", include("accounts.urls")),
    path("api/v1/", include("reporting.api.urls")),
    path("api/v1/", include("statuspages.api_urls")),
    path("api/v1/", include("projects.api.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/alerting/", include("alerting.urls")),
    path("status/", include("statuspages.urls")),
    path("badge/", include(badge_urlpatterns)),
    path("api/v1/config/", include("configfiles.urls")),
]
