"""The operators' admin: every monitor of every owner, with bulk actions."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from monitors.models import AlertRule, Monitor, NotificationChannel, Tag
from monitors.services import checks_queue_now


class AlertRuleInline(admin.TabularInline):
    model = AlertRule
    extra = 0
    fields = ("kind", "threshold", "consecutive_checks", "window_minutes", "channels", "enabled")
    filter_horizontal = ("channels",)

    def formfield_for_manytomany(self, db_field, request, **kwargs):  # type: ignore[no-untyped-def]
        # Offer only the monitor owner's channels when the monitor exists.
        monitor_id = (
            request.resolver_match.kwargs.get("object_id") if request.resolver_match else None
        )
        if db_field.name == "channels" and monitor_id:
            owner_ids = Monitor.objects.filter(pk=monitor_id).values("owner_id")
            kwargs["queryset"] = NotificationChannel.objects.filter(owner_id__in=owner_ids)
        return super().formfield_for_manytomany(db_field, request, **kwargs)


@admin.register(Monitor)
class MonitorAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "status",
        "kind",
        "url",
        "last_checked_at",
        "interval_seconds",
        "enabled",
        "owner",
    )
    list_filter = ("status", "kind", "enabled", ("tags", admin.RelatedOnlyFieldListFilter), "owner")
    search_fields = ("name", "url")
    list_select_related = ("owner",)
    list_per_page = 100
    show_full_result_count = False  # COUNT(*) over 100,000 monitors on every page is waste
    autocomplete_fields = ("owner",)
    filter_horizontal = ("tags",)
    readonly_fields = (
        "status",
        "last_checked_at",
        "next_check_at",
        "consecutive_failures",
        "consecutive_successes",
        "created_at",
        "updated_at",
    )
    fieldsets = (
        (None, {"fields": ("owner", "name", "kind", "url", "enabled", "tags")}),
        (
            "Request",
            {"fields": ("method", "headers", "body", "timeout_seconds", "interval_seconds")},
        ),
        ("Expectations", {"fields": ("expected_status_codes", "keyword", "keyword_mode")}),
        ("Confirmation", {"fields": ("confirm_failures", "recover_successes")}),
        ("Live state", {"fields": readonly_fields}),
    )
    inlines = (AlertRuleInline,)
    actions = ("pause_monitors", "resume_monitors", "check_now")

    @admin.action(description="Pause selected monitors")
    def pause_monitors(self, request: HttpRequest, queryset: QuerySet[Monitor]) -> None:
        count = queryset.pause()  # type: ignore[attr-defined]
        self.message_user(request, f"Paused {count} monitor(s).", messages.SUCCESS)

    @admin.action(description="Resume selected monitors")
    def resume_monitors(self, request: HttpRequest, queryset: QuerySet[Monitor]) -> None:
        count = queryset.resume()  # type: ignore[attr-defined]
        self.message_user(request, f"Resumed {count} monitor(s).", messages.SUCCESS)

    @admin.action(description="Check selected monitors now")
    def check_now(self, request: HttpRequest, queryset: QuerySet[Monitor]) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        count = checks_queue_now(monitor_ids=ids)
        text = f"Queued a check of {count} monitor(s); results appear within seconds."
        if len(ids) > count:
            text += f" {len(ids) - count} paused monitor(s) skipped."
        self.message_user(request, text, messages.SUCCESS)


@admin.register(NotificationChannel)
class NotificationChannelAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "owner", "created_at")
    list_filter = ("kind",)
    search_fields = ("name", "owner__username")
    autocomplete_fields = ("owner",)


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    search_fields = ("name",)
