"""The API's alerting resources: one serializer per resource. Writes go through
``alerting.services.config``, so the API refuses what the models' ``clean()``
refuses, with the same messages keyed by field.

Related objects are looked up among those the caller may see (``visible_to``): an id
of a monitor or channel of a project the caller is not in is refused as one that does
not exist, naming the field; one of another project the caller is in is refused by the
services (a rule's channels and a window's monitors are of its own project)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from rest_framework import serializers

from alerting.models import AlertRule, MaintenanceWindow, Notification, NotificationChannel
from alerting.services.config import (
    alert_rule_create,
    alert_rule_update,
    channel_create,
    channel_update,
    maintenance_window_create,
    maintenance_window_update,
)
from monitors.models import Incident, Monitor
from monitors.selectors import monitors_visible_to, visible_to
from monitors.serializers import TagListField, as_drf_error
from projects.api.fields import ProjectField


def _user(serializer: serializers.BaseSerializer[Any]) -> Any:
    return serializer.context["request"].user


class NotificationChannelSerializer(serializers.ModelSerializer[NotificationChannel]):
    """A channel. ``config`` is written, never read back: its URL and secret are
    credentials. ``target`` and ``has_secret`` say what is stored without showing it."""

    config = serializers.DictField(
        write_only=True,
        help_text='email: {"address": …}; webhook: {"url": …, "secret": …} (secret '
        'optional, signs each request); slack: {"url": …}; apprise: {"url": …}. Replaced '
        "whole when given; never returned.",
    )
    target = serializers.CharField(
        read_only=True, help_text="The email address, or the URL's scheme and host only."
    )
    has_secret = serializers.BooleanField(
        read_only=True, help_text="Whether a webhook signing secret is stored."
    )
    healthy = serializers.SerializerMethodField(
        help_text="False while deliveries through it keep failing."
    )
    project = ProjectField()

    class Meta:
        model = NotificationChannel
        fields = (
            "id",
            "project",
            "name",
            "kind",
            "config",
            "target",
            "has_secret",
            "healthy",
            "created_at",
        )
        read_only_fields = ("id", "created_at")

    def get_healthy(self, channel: NotificationChannel) -> bool:
        health = getattr(channel, "health", None)
        return health is None or health.unhealthy_since is None

    def create(self, validated_data: dict[str, Any]) -> NotificationChannel:
        try:
            return channel_create(owner=_user(self), **validated_data)
        except DjangoValidationError as exc:
            raise as_drf_error(exc) from exc

    def update(
        self, instance: NotificationChannel, validated_data: dict[str, Any]
    ) -> NotificationChannel:
        try:
            return channel_update(channel=instance, **validated_data)
        except DjangoValidationError as exc:
            raise as_drf_error(exc) from exc


class AlertRuleSerializer(serializers.ModelSerializer[AlertRule]):
    """A rule of one of your monitors, alerting through some of your channels."""

    monitor = serializers.PrimaryKeyRelatedField(queryset=Monitor.objects.none())
    channels = serializers.PrimaryKeyRelatedField(
        many=True, required=False, queryset=NotificationChannel.objects.none()
    )

    class Meta:
        model = AlertRule
        fields = (
            "id",
            "monitor",
            "kind",
            "threshold",
            "consecutive_checks",
            "window_minutes",
            "channels",
            "enabled",
        )
        read_only_fields = ("id",)

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        fields = super().get_fields()
        if "request" in self.context:  # absent when the schema is generated
            user = _user(self)
            fields["monitor"].queryset = monitors_visible_to(user)  # type: ignore[attr-defined]
            fields["channels"].child_relation.queryset = visible_to(  # type: ignore[attr-defined]
                user, NotificationChannel.objects.all()
            )
        return fields

    def create(self, validated_data: dict[str, Any]) -> AlertRule:
        try:
            return alert_rule_create(**validated_data)
        except DjangoValidationError as exc:
            raise as_drf_error(exc) from exc

    def update(self, instance: AlertRule, validated_data: dict[str, Any]) -> AlertRule:
        try:
            return alert_rule_update(rule=instance, **validated_data)
        except DjangoValidationError as exc:
            raise as_drf_error(exc) from exc


class MaintenanceWindowSerializer(serializers.ModelSerializer[MaintenanceWindow]):
    """A maintenance window over some of your monitors and your monitors with some
    tags. Times are instants in ISO 8601 (give an offset; none is UTC); a weekly window
    repeats at the same wall-clock times in ``time_zone``."""

    monitors = serializers.PrimaryKeyRelatedField(
        many=True, required=False, queryset=Monitor.objects.none()
    )
    tags = TagListField(help_text="Tag names: the window covers your monitors with them.")
    active = serializers.SerializerMethodField(help_text="Whether alerts are held right now.")
    project = ProjectField()

    class Meta:
        model = MaintenanceWindow
        fields = (
            "id",
            "project",
            "name",
            "monitors",
            "tags",
            "starts_at",
            "ends_at",
            "time_zone",
            "repeat",
            "repeat_until",
            "active",
        )
        read_only_fields = ("id",)

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        fields = super().get_fields()
        if "request" in self.context:
            queryset = monitors_visible_to(_user(self))
            fields["monitors"].child_relation.queryset = queryset  # type: ignore[attr-defined]
        return fields

    def get_active(self, window: MaintenanceWindow) -> bool:
        return window.is_active(timezone.now())

    def create(self, validated_data: dict[str, Any]) -> MaintenanceWindow:
        try:
            return maintenance_window_create(owner=_user(self), **validated_data)
        except DjangoValidationError as exc:
            raise as_drf_error(exc) from exc

    def update(self, instance: MaintenanceWindow, validated_data: dict[str, Any]) -> Any:
        try:
            return maintenance_window_update(window=instance, **validated_data)
        except DjangoValidationError as exc:
            raise as_drf_error(exc) from exc


class IncidentSerializer(serializers.ModelSerializer[Incident]):
    end_reason = serializers.ChoiceField(
        choices=Incident.EndReason.choices,
        allow_blank=True,
        read_only=True,
        help_text="Why it ended; empty while open.",
    )
    regions = serializers.SerializerMethodField(
        help_text="The probe regions whose checks of the confirming slot failed."
    )

    class Meta:
        model = Incident
        fields = (
            "id",
            "monitor",
            "started_at",
            "ended_at",
            "duration_seconds",
            "end_reason",
            "first_failure_kind",
            "first_failure_message",
            "checks_failed",
            "regions",
        )
        read_only_fields = fields

    def get_regions(self, incident: Incident) -> list[str]:
        return incident.region_names


class TestNotificationSerializer(serializers.ModelSerializer[Notification]):
    """A test send's record; its ``error`` has the channel's secrets masked."""

    error = serializers.SerializerMethodField()

    class Meta:
        model = Notification
        fields = ("id", "channel", "event", "status", "attempts", "error", "created_at", "sent_at")

    def get_error(self, notification: Notification) -> str:
        # Delivery masks errors before storing them; rows stored before it did may not be.
        return notification.channel.redact(notification.error)
