from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from configfiles.models import ConfigApply


@admin.register(ConfigApply)
class ConfigApplyAdmin(admin.ModelAdmin):
    """The history of configuration applies and imports; a record, so read-only."""

    list_display = ("applied_at", "owner", "source", "applied_by", "created", "updated", "deleted")
    list_filter = ("source",)
    search_fields = ("owner__username", "changes")
    readonly_fields = [f.name for f in ConfigApply._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: ConfigApply | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ConfigApply | None = None) -> bool:
        return False
