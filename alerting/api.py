"""Alerting endpoints of the API (the rest of /api/v1/ is the reporting app's)."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from alerting.models import Notification, NotificationChannel
from alerting.services import channel_send_test
from monitors.models import Incident
from monitors.selectors import visible_to


class TestNotificationSerializer(serializers.ModelSerializer[Notification]):
    class Meta:
        model = Notification
        fields = ("id", "channel", "event", "status", "attempts", "error", "created_at", "sent_at")


class IncidentSerializer(serializers.ModelSerializer[Incident]):
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

    def get_regions(self, incident: Incident) -> list[str]:
        return incident.region_names


MAX_INCIDENTS = 200


class IncidentListParams(serializers.Serializer[Any]):
    monitor = serializers.IntegerField(required=False, min_value=1, help_text="only this monitor")
    open = serializers.BooleanField(required=False, default=False, help_text="only open ones")
    limit = serializers.IntegerField(
        required=False, default=50, min_value=1, max_value=MAX_INCIDENTS, help_text="how many"
    )


@extend_schema(parameters=[IncidentListParams], responses=IncidentSerializer(many=True))
@api_view(["GET"])
def incident_list(request: Request) -> Response:
    """The incidents of the monitors you may see, newest first; ``?monitor=<id>``,
    ``?open=true``, ``?limit=`` (1 to 200, default 50). A bad parameter is a 400 naming
    it."""
    params = IncidentListParams(data=request.query_params)
    params.is_valid(raise_exception=True)
    incidents = visible_to(request.user, Incident.objects.all(), owner="monitor__owner")
    if params.validated_data.get("monitor") is not None:
        incidents = incidents.filter(monitor_id=params.validated_data["monitor"])
    if params.validated_data["open"]:
        incidents = incidents.filter(open_monitor_id__isnull=False)
    rows = incidents.order_by("-started_at", "-id")[: params.validated_data["limit"]]
    return Response(IncidentSerializer(rows, many=True).data)


@extend_schema(
    request=None,
    responses={200: TestNotificationSerializer, 502: TestNotificationSerializer},
)
@api_view(["POST"])
def channel_test(request: Request, pk: int) -> Response:
    """Send a test notification through one of your channels now; says whether it went."""
    channel = get_object_or_404(visible_to(request.user, NotificationChannel.objects.all()), pk=pk)
    notification = channel_send_test(channel=channel)
    sent = notification.status == Notification.Status.SENT
    return Response(
        TestNotificationSerializer(notification).data,
        status=status.HTTP_200_OK if sent else status.HTTP_502_BAD_GATEWAY,
    )
