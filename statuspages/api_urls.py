"""Status page API routes, mounted under /api/v1/."""

from __future__ import annotations

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from statuspages.api import BadgeViewSet, PageIncidentViewSet, StatusPageViewSet

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("status-pages", StatusPageViewSet, basename="status-page")
router.register("status-page-incidents", PageIncidentViewSet, basename="status-page-incident")
router.register("badges", BadgeViewSet, basename="badge")

urlpatterns = [path("", include(router.urls))]
