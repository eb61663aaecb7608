"""API views of alerting: channels, alert rules, maintenance windows and incidents.

Every queryset starts from the one access rule (``visible_to``): an object of a
project the caller is not in is a 404 on every endpoint, never its data; a change the
caller's role (or API key) does not allow is a 403 (``InProjectMixin``). Views are
thin: the serializers call ``alerting.services``.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from alerting.api.filters import (
    AlertRuleFilter,
    IncidentFilter,
    MaintenanceWindowFilter,
    NotificationChannelFilter,
)
from alerting.api.serializers import (
    AlertRuleSerializer,
    IncidentSerializer,
    MaintenanceWindowSerializer,
    NotificationChannelSerializer,
    TestNotificationSerializer,
)
from alerting.models import AlertRule, MaintenanceWindow, Notification, NotificationChannel
from alerting.services import channel_send_test
from monitors.models import Incident
from monitors.selectors import visible_to
from projects.api.permissions import InProjectMixin, require_change
from projects.roles import Area

# PUT would demand every field; PATCH is the one way to change a resource.
WRITE_METHODS = ["get", "post", "patch", "delete", "head", "options"]


def crud_summaries(plural: str, one: str) -> Any:
    """The summaries of a resource's list, create, get, change and delete operations."""
    return extend_schema_view(
        list=extend_schema(summary=f"List your {plural}"),
        create=extend_schema(summary=f"Create {one}"),
        retrieve=extend_schema(summary=f"Get {one}"),
        partial_update=extend_schema(summary=f"Change {one}"),
        destroy=extend_schema(summary=f"Delete {one}"),
    )


def channel_test_response(channel: NotificationChannel) -> Response:
    """Send a test through ``channel`` now; 200 with the record if it went, else 502."""
    notification = channel_send_test(channel=channel)
    sent = notification.status == Notification.Status.SENT
    return Response(
        TestNotificationSerializer(notification).data,
        status=status.HTTP_200_OK if sent else status.HTTP_502_BAD_GATEWAY,
    )


@crud_summaries(
    "notification channels",
    "a channel (its config is never returned; one given on a change replaces it)",
)
class NotificationChannelViewSet(InProjectMixin, viewsets.ModelViewSet[NotificationChannel]):
    serializer_class = NotificationChannelSerializer
    project_area = Area.CHANNELS
    filterset_class = NotificationChannelFilter
    http_method_names = WRITE_METHODS

    def get_queryset(self) -> QuerySet[NotificationChannel]:
        channels = NotificationChannel.objects.select_related("health").order_by("id")
        return visible_to(self.request.user, channels)

    @extend_schema(
        summary="Send a test notification now",
        request=None,
        responses={200: TestNotificationSerializer, 502: TestNotificationSerializer},
    )
    @action(detail=True, methods=["post"])
    def test(self, request: Request, pk: str | None = None) -> Response:
        return channel_test_response(self.get_object())


@crud_summaries("alert rules (of your monitors)", "an alert rule")
class AlertRuleViewSet(InProjectMixin, viewsets.ModelViewSet[AlertRule]):
    serializer_class = AlertRuleSerializer
    project_area = Area.RULES
    filterset_class = AlertRuleFilter
    http_method_names = WRITE_METHODS

    def get_queryset(self) -> QuerySet[AlertRule]:
        rules = AlertRule.objects.select_related("monitor").prefetch_related("channels")
        return visible_to(self.request.user, rules.order_by("id"), project="monitor__project")

    def project_id_of(self, obj: AlertRule) -> int:
        return obj.monitor.project_id

    def creation_project_id(self, serializer: Any) -> int:
        # A rule is in its monitor's project (one the caller sees: the field's queryset).
        return int(serializer.validated_data["monitor"].project_id)

    def creation_fields(self, project_id: int) -> dict[str, Any]:
        return {}

    def perform_update(self, serializer: Any) -> None:
        # Moving a rule to another monitor needs the right to change rules there too.
        monitor = serializer.validated_data.get("monitor")
        if monitor is not None:
            require_change(self.request.user, monitor.project_id, self.project_area)
        serializer.save()


@crud_summaries("maintenance windows", "a maintenance window")
class MaintenanceWindowViewSet(InProjectMixin, viewsets.ModelViewSet[MaintenanceWindow]):
    serializer_class = MaintenanceWindowSerializer
    project_area = Area.WINDOWS
    filterset_class = MaintenanceWindowFilter
    http_method_names = WRITE_METHODS

    def get_queryset(self) -> QuerySet[MaintenanceWindow]:
        windows = MaintenanceWindow.objects.prefetch_related("monitors", "tags").order_by("id")
        return visible_to(self.request.user, windows)


@extend_schema_view(
    list=extend_schema(summary="List the incidents of your monitors, newest first"),
    retrieve=extend_schema(summary="Get an incident"),
)
class IncidentViewSet(viewsets.ReadOnlyModelViewSet[Incident]):
    serializer_class = IncidentSerializer
    filterset_class = IncidentFilter

    def get_queryset(self) -> QuerySet[Incident]:
        incidents = Incident.objects.order_by("-started_at", "-id")
        return visible_to(self.request.user, incidents, project="monitor__project")
