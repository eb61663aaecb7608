"""The API's monitor serializer. Writes go through ``monitors.services`` so the API
refuses exactly what the admin and the dashboard form refuse, with the same messages."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from monitors.heartbeats import heartbeat_ping_path, heartbeat_slug_ping_path
from monitors.models import HEARTBEAT_STATES, Monitor, Tag
from monitors.selectors import monitors_visible_to
from monitors.services import (
    MONITOR_EDITABLE_FIELDS,
    monitor_create,
    monitor_update,
    monitors_check_now,
    monitors_pause,
    monitors_resume,
)
from projects.api.fields import ProjectField
from projects.api.permissions import require_change
from projects.roles import Area

WRITABLE_FIELDS = MONITOR_EDITABLE_FIELDS
MAX_TAGS = 20
# The most monitors one bulk request acts on: one UPDATE or one publish of that many.
MAX_BULK_IDS = 1000


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
    """Tag names in, tag names out (the model holds Tag rows): a monitor's tags, a
    maintenance window's."""

    child = serializers.SlugField(max_length=50)

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", MAX_TAGS)
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def to_representation(self, data: Any) -> list[str]:
        # prefetch_related("tags") in the view keeps this from being a query per row.
        return [tag.name for tag in data.all()]


class MonitorSerializer(serializers.ModelSerializer[Monitor]):
    tags = TagListField()
    project = ProjectField()
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
            "project",
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

    # Null for the monitors that have none: the schema says so (the conformance run holds it).
    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_ping_url(self, monitor: Monitor) -> str | None:
        if monitor.kind != Monitor.Kind.HEARTBEAT:
            return None
        return self.context["request"].build_absolute_uri(heartbeat_ping_path(monitor))

    @extend_schema_field(serializers.URLField(allow_null=True))
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


class TagSerializer(serializers.ModelSerializer[Tag]):
    """A tag (a global label) and how many of the caller's monitors carry it."""

    monitors = serializers.IntegerField(
        source="monitor_count", read_only=True, help_text="Your monitors with this tag."
    )

    class Meta:
        model = Tag
        fields = ("id", "name", "monitors")
        read_only_fields = fields


class MonitorBulkSerializer(serializers.Serializer[Any]):
    """``{"action": "pause" | "resume" | "check_now", "ids": [...]}``: one action on
    many of the caller's monitors, through the same services as the admin and the
    dashboard. An id the caller may not see is refused like one that does not exist."""

    ACTIONS = {
        "pause": monitors_pause,
        "resume": monitors_resume,
        "check_now": monitors_check_now,
    }

    action = serializers.ChoiceField(choices=sorted(ACTIONS))
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        min_length=1,
        max_length=MAX_BULK_IDS,
        help_text=f"Monitor ids, 1 to {MAX_BULK_IDS}.",
    )

    def validate_ids(self, value: list[int]) -> list[int]:
        wanted = sorted(set(value))
        user = self.context["request"].user
        visible = dict(
            monitors_visible_to(user).filter(pk__in=wanted).values_list("pk", "project_id")
        )
        missing = sorted(set(wanted) - set(visible))
        if missing:
            shown = ", ".join(str(pk) for pk in missing[:10])
            raise serializers.ValidationError(f"No monitor with id {shown}; nothing was done.")
        for project_id in sorted(set(visible.values())):
            require_change(user, project_id, Area.MONITORS)
        return wanted

    def save(self, **kwargs: Any) -> dict[str, Any]:
        """Run the action; ``{"action", "ids", "changed"}`` where ``changed`` counts the
        monitors paused, resumed or queued for a check (paused ones are not checked)."""
        action, ids = self.validated_data["action"], self.validated_data["ids"]
        return {"action": action, "ids": ids, "changed": self.ACTIONS[action](monitor_ids=ids)}


class MonitorBulkResultSerializer(serializers.Serializer[Any]):
    action = serializers.CharField()
    ids = serializers.ListField(child=serializers.IntegerField())
    changed = serializers.IntegerField(
        help_text="Monitors paused (were running), resumed (were paused) or queued for a "
        "check now (enabled ones, heartbeats aside)."
    )


class CheckNowResultSerializer(serializers.Serializer[Any]):
    queued = serializers.IntegerField(
        help_text="1, or 0 for a paused monitor or a heartbeat (not checked)."
    )
