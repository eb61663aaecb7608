"""Alerting in the operators' admin: alert rules (inline on a monitor), channels with
their health and a "send test notification" action, every notification and its
attempts, maintenance windows."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import AdminSplitDateTime
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from alerting.forms import WallClockTimesForm
from alerting.models import (
    AlertRule,
    ChannelHealth,
    MaintenanceWindow,
    MonitorAlerting,
    Notification,
    NotificationAttempt,
    NotificationChannel,
)
from alerting.selectors import period_text
from alerting.services import channel_send_test
from monitors.admin import MonitorAdmin, ReadOnlyAdmin
from monitors.models import Monitor


class AlertRuleInline(admin.TabularInline):
    model = AlertRule
    extra = 0
    fields = ("kind", "threshold", "consecutive_checks", "window_minutes", "channels", "enabled")
    filter_horizontal = ("channels",)

    def formfield_for_manytomany(self, db_field, request, **kwargs):  # type: ignore[no-untyped-def]
        # Offer only the channels of the monitor's project when the monitor exists.
        monitor_id = (
            request.resolver_match.kwargs.get("object_id") if request.resolver_match else None
        )
        if db_field.name == "channels" and monitor_id:
            project_ids = Monitor.objects.filter(pk=monitor_id).values("project_id")
            kwargs["queryset"] = NotificationChannel.objects.filter(project_id__in=project_ids)
        return super().formfield_for_manytomany(db_field, request, **kwargs)


# The monitor's change page shows its alert rules (the monitors app cannot name them).
MonitorAdmin.inlines = (*MonitorAdmin.inlines, AlertRuleInline)  # type: ignore[assignment]


class AttemptInline(admin.TabularInline):
    model = NotificationAttempt
    extra = 0
    can_delete = False
    fields = ("number", "started_at", "finished_at", "ok", "transient", "error")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "event",
        "monitor",
        "channel",
        "status",
        "hold_reason",
        "attempts",
        "sent_at",
        "error",
    )
    list_filter = ("status", "event", "hold_reason")
    list_select_related = ("monitor", "channel")
    search_fields = ("dedup_key", "monitor__name", "channel__name")
    show_full_result_count = False
    inlines = (AttemptInline,)


@admin.register(ChannelHealth)
class ChannelHealthAdmin(ReadOnlyAdmin):
    list_display = (
        "channel",
        "healthy",
        "consecutive_failures",
        "last_error",
        "last_failure_at",
        "last_success_at",
    )
    list_select_related = ("channel",)

    @admin.display(boolean=True)
    def healthy(self, obj: ChannelHealth) -> bool:
        return obj.unhealthy_since is None


MAINTENANCE_WINDOW_FIELDS = (
    "name",
    "owner",
    "time_zone",
    "starts_at",
    "ends_at",
    "repeat",
    "repeat_until",
    "monitors",
    "tags",
)


class WallClockField(forms.SplitDateTimeField):
    """A date and a time as a clock shows them: naive, so that the form can read them
    in the window's zone (Django's own field would read them in UTC, the site's
    ``TIME_ZONE``)."""

    widget = AdminSplitDateTime

    def compress(self, data_list: tuple[dt.date, dt.time] | None) -> dt.datetime | None:
        aware = super().compress(data_list)  # UTC, since TIME_ZONE is UTC
        return None if aware is None else timezone.make_naive(aware, dt.UTC)


class MaintenanceWindowForm(WallClockTimesForm):
    """The window's times are shown and entered on its own clocks (``time_zone``)."""

    starts_at = WallClockField(help_text="In the window's time zone. Weekly: the first one.")
    ends_at = WallClockField(help_text="In the window's time zone.")
    repeat_until = WallClockField(required=False, help_text="In the window's time zone.")

    class Meta:
        model = MaintenanceWindow
        fields = MAINTENANCE_WINDOW_FIELDS


@admin.register(MaintenanceWindow)
class MaintenanceWindowAdmin(admin.ModelAdmin):
    form = MaintenanceWindowForm
    list_display = ("name", "owner", "local_times", "repeat", "local_repeat_until")
    list_filter = ("repeat",)
    search_fields = ("name",)
    autocomplete_fields = ("owner",)
    filter_horizontal = ("monitors", "tags")
    fields = MAINTENANCE_WINDOW_FIELDS

    @admin.display(description="first window (its time zone)", ordering="starts_at")
    def local_times(self, obj: MaintenanceWindow) -> str:
        return period_text(obj.starts_at, obj.ends_at, obj.zone)

    @admin.display(description="repeat until", ordering="repeat_until")
    def local_repeat_until(self, obj: MaintenanceWindow) -> str:
        if obj.repeat_until is None:
            return "—"
        return f"{obj.repeat_until.astimezone(obj.zone):%Y-%m-%d %H:%M %Z}"


@admin.register(MonitorAlerting)
class MonitorAlertingAdmin(admin.ModelAdmin):
    list_display = ("monitor", "reminder_minutes", "flapping_since", "last_change_at")
    readonly_fields = ("change_times", "flapping_since", "last_change_at")
    raw_id_fields = ("monitor",)


@admin.register(NotificationChannel)
class NotificationChannelAdmin(admin.ModelAdmin):
    """Channels of every owner, with their health and a test action."""

    list_display = ("name", "kind", "owner", "created_at", "healthy")
    list_filter = ("kind",)
    search_fields = ("name", "owner__username")
    autocomplete_fields = ("owner",)
    list_select_related = ("owner", "health")
    actions = ("send_test_notification",)

    @admin.display(boolean=True)
    def healthy(self, obj: NotificationChannel) -> bool:
        try:
            return obj.health.unhealthy_since is None
        except ChannelHealth.DoesNotExist:
            return True  # never failed

    @admin.action(description="Send a test notification")
    def send_test_notification(
        self, request: HttpRequest, queryset: QuerySet[NotificationChannel]
    ) -> None:
        for channel in queryset[:20]:
            notification = channel_send_test(channel=channel)
            if notification.status == Notification.Status.SENT:
                self.message_user(request, f"{channel}: sent.", messages.SUCCESS)
            else:
                self.message_user(
                    request,
                    f"{channel}: {notification.error or notification.status}",
                    messages.ERROR,
                )
