"""The API's monitor serializer. Writes go through ``monitors.services`` so the API
refuses exactly what the admin and the dashboard form refuse, with the same messages."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from monitors.models import Monitor
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

    class Meta:
        model = Monitor
        fields = ("id", *WRITABLE_FIELDS, "enabled", "tags", "status", "last_checked_at")
        read_only_fields = ("id", "status", "last_checked_at")

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
