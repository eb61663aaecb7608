"""Explicit serializers; writes go through ``monitors.services`` so the API refuses
exactly what the admin and the dashboard form refuse, with the same messages."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from monitors.models import Monitor
from monitors.services import MONITOR_EDITABLE_FIELDS, monitor_create, monitor_update

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
        if validated_data.get("enabled") is False:
            validated_data["status"] = Monitor.Status.PAUSED
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
        # would leave stale; the queryset methods do both in one UPDATE.
        if enabled is not None and enabled != monitor.enabled:
            same = Monitor.objects.filter(pk=monitor.pk)
            same.resume() if enabled else same.pause()
            monitor.refresh_from_db()
        return monitor


class CheckRowSerializer(serializers.Serializer[Any]):
    scheduled_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField()
    ok = serializers.BooleanField()
    status_code = serializers.IntegerField(allow_null=True)
    duration_ms = serializers.IntegerField()
    failure = serializers.CharField(allow_null=True, help_text="Why the check failed, if it did.")
    error = serializers.CharField(allow_blank=True)
    tls_expires_at = serializers.DateTimeField(allow_null=True)


class ResultsPageSerializer(serializers.Serializer[Any]):
    next = serializers.URLField(allow_null=True, help_text="The next (older) page, or null.")
    results = CheckRowSerializer(many=True)


class LatencyFieldsSerializer(serializers.Serializer[Any]):
    checks = serializers.IntegerField()
    failures = serializers.IntegerField()
    uptime_percent = serializers.FloatField(allow_null=True)
    avg_ms = serializers.FloatField(allow_null=True)
    p50_ms = serializers.IntegerField(allow_null=True)
    p95_ms = serializers.IntegerField(allow_null=True)
    p99_ms = serializers.IntegerField(allow_null=True)
    min_ms = serializers.IntegerField(allow_null=True)
    max_ms = serializers.IntegerField(allow_null=True)


class StatsSerializer(LatencyFieldsSerializer):
    window = serializers.CharField()
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()


class SeriesPointSerializer(LatencyFieldsSerializer):
    start = serializers.DateTimeField()


class SeriesSerializer(serializers.Serializer[Any]):
    bucket = serializers.CharField()
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    points = SeriesPointSerializer(many=True)
