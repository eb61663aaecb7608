"""The operators' admin: every monitor of every owner, with bulk actions, and incidents."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from monitors.models import Incident, Monitor, Tag
from monitors.services import monitors_check_now, monitors_pause, monitors_resume


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records written by the workers: visible, not editable."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


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
        "heartbeat_uuid",
        "heartbeat_last_ping_at",
        "heartbeat_deadline_at",
        "created_at",
        "updated_at",
    )
    fieldsets = (
        (None, {"fields": ("owner", "name", "kind", "url", "enabled", "tags")}),
        (
            "Request",
            {"fields": ("method", "headers", "body", "timeout_seconds", "interval_seconds")},
        ),
        (
            "Expectations",
            {
                "fields": (
                    "expected_status_codes",
                    "keyword",
                    "keyword_mode",
                    "json_assertions",
                    "max_body_kib",
                )
            },
        ),
        ("Connection and TLS", {"fields": ("connect_to", "tls_verify", "tls_ca_bundle")}),
        (
            "DNS",
            {"fields": ("dns_record_type", "dns_resolver", "dns_expected", "dns_match")},
        ),
        ("Ping", {"fields": ("ping_count", "ping_max_loss_percent", "ping_max_rtt_ms")}),
        ("Regions", {"fields": ("regions", "regions_confirm")}),
        (
            "Heartbeat",
            {
                "fields": (
                    "heartbeat_slug",
                    ("heartbeat_period_seconds", "heartbeat_grace_seconds"),
                    ("heartbeat_cron", "heartbeat_tz"),
                )
            },
        ),
        (
            "Confirmation",
            {
                "fields": (
                    "confirm_failures",
                    ("confirm_window_failures", "confirm_window"),
                    "recover_successes",
                )
            },
        ),
        ("Live state", {"fields": readonly_fields}),
    )
    # alerting adds its rules inline (alerting/admin.py): this app does not know them.
    inlines = ()
    actions = ("pause_monitors", "resume_monitors", "check_now")

    @admin.action(description="Pause selected monitors")
    def pause_monitors(self, request: HttpRequest, queryset: QuerySet[Monitor]) -> None:
        count = monitors_pause(monitor_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"Paused {count} monitor(s).", messages.SUCCESS)

    @admin.action(description="Resume selected monitors")
    def resume_monitors(self, request: HttpRequest, queryset: QuerySet[Monitor]) -> None:
        count = monitors_resume(monitor_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"Resumed {count} monitor(s).", messages.SUCCESS)

    @admin.action(description="Check selected monitors now")
    def check_now(self, request: HttpRequest, queryset: QuerySet[Monitor]) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        count = monitors_check_now(monitor_ids=ids)
        text = f"Queued a check of {count} monitor(s); results appear within seconds."
        if len(ids) > count:
            text += f" {len(ids) - count} paused monitor(s) skipped."
        self.message_user(request, text, messages.SUCCESS)


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    search_fields = ("name",)


@admin.register(Incident)
class IncidentAdmin(ReadOnlyAdmin):
    list_display = (
        "monitor",
        "started_at",
        "ended_at",
        "duration_seconds",
        "checks_failed",
        "first_failure_kind",
        "first_failure_message",
        "regions",
    )
    list_filter = (("ended_at", admin.EmptyFieldListFilter), "first_failure_kind")
    list_select_related = ("monitor",)
    search_fields = ("monitor__name",)
    show_full_result_count = False
