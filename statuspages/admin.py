"""Status pages in the operators' admin: every page with its domains, groups and
monitors inline, incidents with their updates, and the maintenance shown on pages."""

from __future__ import annotations

from django.contrib import admin

from statuspages.models import (
    PageGroup,
    PageIncident,
    PageIncidentUpdate,
    PageMaintenance,
    PageMonitor,
    StatusDomain,
    StatusPage,
)


class StatusDomainInline(admin.TabularInline):
    model = StatusDomain
    extra = 0


class PageGroupInline(admin.TabularInline):
    model = PageGroup
    extra = 0


class PageMonitorInline(admin.TabularInline):
    model = PageMonitor
    extra = 0
    raw_id_fields = ("monitor",)


class PageMaintenanceInline(admin.TabularInline):
    model = PageMaintenance
    extra = 0
    raw_id_fields = ("window",)


@admin.register(StatusPage)
class StatusPageAdmin(admin.ModelAdmin):
    list_display = ("title", "slug", "owner", "access", "updated_at")
    search_fields = ("title", "slug")
    raw_id_fields = ("owner",)
    inlines = (StatusDomainInline, PageGroupInline, PageMonitorInline, PageMaintenanceInline)


class PageIncidentUpdateInline(admin.StackedInline):
    model = PageIncidentUpdate
    extra = 0


@admin.register(PageIncident)
class PageIncidentAdmin(admin.ModelAdmin):
    list_display = ("title", "page", "status", "impact", "started_at")
    list_filter = ("status", "impact")
    raw_id_fields = ("page", "source", "monitors")
    inlines = (PageIncidentUpdateInline,)
