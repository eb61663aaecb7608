"""The API's monitor serializer. Writes go through ``monitors.services`` so the API
refuses exactly what the admin and the dashboard form refuse, with the same messages."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from monitors.heartbeats import heartbeat_ping_path, heartbeat_slug_ping_path
from monitors.models import HEARTBEAT_STATES, Monitor
from monitors.services import (
    MONITOR_EDITABLE_FIELDS,
    monitor_create,
    monitor_update,
    monitors_pause,
    monitors_resume,
)

WRITABLE_FIELDS = MONITOR_EDITABLE_FIELDS


def as_drf_error(exc: DjangoValidationError) -> serializers.ValidationError:
    """Model ``clean()`` errors keyed by field, with ``__all__`` as DRF names it."""
    if hasattr(exc, "error_dict"):
        detail = {
            ("non_field_errors" if key == "__all__" else key): value
            for key, value in exc.message_dict.items()
        }
        return serializers.ValidationError(detail)
    return serializers.ValidationError({"non_field_errors": exc.messages})


class TagListField(serializers.ListField):
    """Tag names in, tag names out (the model holds Tag rows)."""

    child = serializers.SlugField(max_length=50)

    def to_representation(self, data: Any) -> list[str]:
        # prefetch_related("tags") in the view keeps this from being a query per row.
        return [tag.name for tag in data.all()]


class MonitorSerializer(serializers.ModelSerializer[Monitor]):
    tags = TagListField(required=False, max_length=20)
    ping_url = serializers.SerializerMethodField(
        help_text="Heartbeats: the URL your job pings (null for other kinds)."
    )
    slug_ping_url = serializers.SerializerMethodField(
        help_text="Heartbeats with a slug: /ping/<your ping key>/<slug> (null otherwise)."
    )
    heartbeat_state = serializers.SerializerMethodField(
        help_text="Heartbeats: new, up, late (inside the grace time), down or paused."
    )

    class Meta:
        model = Monitor
        fields = (
            "id",
            *WRITABLE_FIELDS,
            "enabled",
            "tags",
            "status",
            "last_checked_at",
            "ping_url",
            "slug_ping_url",
            "heartbeat_state",
            "heartbeat_last_ping_at",
            "heartbeat_deadline_at",
        )
        read_only_fields = (
            "id",
            "status",
            "last_checked_at",
            "heartbeat_last_ping_at",
            "heartbeat_deadline_at",
        )

    @extend_schema_field(OpenApiTypes.URI)
    def get_ping_url(self, monitor: Monitor) -> str | None:
        if monitor.kind != Monitor.Kind.HEARTBEAT:
            return None
        return self.context["request"].build_absolute_uri(heartbeat_ping_path(monitor))

    @extend_schema_field(OpenApiTypes.URI)
    def get_slug_ping_url(self, monitor: Monitor) -> str | None:
        path = heartbeat_slug_ping_path(monitor)
        return None if path is None else self.context["request"].build_absolute_uri(path)

    @extend_schema_field(serializers.ChoiceField(choices=HEARTBEAT_STATES, allow_null=True))
    def get_heartbeat_state(self, monitor: Monitor) -> str | None:
        return monitor.heartbeat_state() if monitor.kind == Monitor.Kind.HEARTBEAT else None

    def create(self, validated_data: dict[str, Any]) -> Monitor:
        tags = validated_data.pop("tags", [])
        try:
            return monitor_create(owner=self.context["request"].user, tags=tags, **validated_data)
        except DjangoValidationError as exc:
            raise as_drf_error(exc) from exc

    def update(self, instance: Monitor, validated_data: dict[str, Any]) -> Monitor:
        tags = validated_data.pop("tags", None)
        enabled = validated_data.pop("enabled", None)
        try:
            monitor = monitor_update(monitor=instance, tags=tags, **validated_data)
        except DjangoValidationError as exc:
            raise as_drf_error(exc) from exc
        # Pausing and resuming also move the live status, which a plain field write
        # would leave stale; the services do both in one UPDATE.
        if enabled is not None and enabled != monitor.enabled:
            action = monitors_resume if enabled else monitors_pause
            action(monitor_ids=[monitor.pk])
            monitor.refresh_from_db()
        return monitor
