from __future__ import annotations

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from alerting.api.views import (
    AlertRuleViewSet,
    IncidentViewSet,
    MaintenanceWindowViewSet,
    NotificationChannelViewSet,
)
from reporting.api.views import MonitorViewSet, TagViewSet

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("monitors", MonitorViewSet, basename="monitor")
router.register("tags", TagViewSet, basename="tag")
router.register("channels", NotificationChannelViewSet, basename="channel")
router.register("rules", AlertRuleViewSet, basename="rule")
router.register("maintenance-windows", MaintenanceWindowViewSet, basename="maintenance-window")
router.register("incidents", IncidentViewSet, basename="incident")

urlpatterns = [
    path("", include(router.urls)),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]
