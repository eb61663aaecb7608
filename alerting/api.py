"""Alerting endpoints of the API (the rest of /api/v1/ is the reporting app's)."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from alerting.models import Notification, NotificationChannel
from alerting.services import channel_send_test
from monitors.models import Incident


class TestNotificationSerializer(serializers.ModelSerializer[Notification]):
    class Meta:
        model = Notification
        fields = ("id", "channel", "event", "status", "attempts", "error", "created_at", "sent_at")


class IncidentSerializer(serializers.ModelSerializer[Incident]):
    class Meta:
        model = Incident
        fields = (
            "id",
            "monitor",
            "started_at",
            "ended_at",
            "duration_seconds",
            "first_failure_kind",
            "first_failure_message",
            "checks_failed",
        )


MAX_INCIDENTS = 200


@extend_schema(
    responses=IncidentSerializer(many=True),
    parameters=[
        OpenApiParameter("monitor", OpenApiTypes.INT, description="only this monitor"),
        OpenApiParameter("open", OpenApiTypes.BOOL, description="only open incidents"),
        OpenApiParameter("limit", OpenApiTypes.INT, description=f"at most {MAX_INCIDENTS}"),
    ],
)
@api_view(["GET"])
def incident_list(request: Request) -> Response:
    """Your monitors' incidents, newest first; ``?monitor=<id>``, ``?open=true``,
    ``?limit=`` (at most 200)."""
    incidents = Incident.objects.filter(monitor__owner_id=request.user.pk)
    params = request.query_params
    try:
        limit = min(int(params.get("limit", 50)), MAX_INCIDENTS)
        if "monitor" in params:
            incidents = incidents.filter(monitor_id=int(params["monitor"]))
    except ValueError:
        return Response(
            {"detail": "monitor and limit must be whole numbers."},
            status=status.HTTP_400_BAD_REQUEST,
        )
    if params.get("open") in ("true", "1"):
        incidents = incidents.filter(open_monitor_id__isnull=False)
    rows = incidents.order_by("-started_at", "-id")[: max(limit, 1)]
    return Response(IncidentSerializer(rows, many=True).data)


@extend_schema(
    request=None,
    responses={200: TestNotificationSerializer, 502: TestNotificationSerializer},
)
@api_view(["POST"])
def channel_test(request: Request, pk: int) -> Response:
    """Send a test notification through one of your channels now; says whether it went."""
    channel = get_object_or_404(NotificationChannel, pk=pk, owner_id=request.user.pk)
    notification = channel_send_test(channel=channel)
    sent = notification.status == Notification.Status.SENT
    return Response(
        TestNotificationSerializer(notification).data,
        status=status.HTTP_200_OK if sent else status.HTTP_502_BAD_GATEWAY,
    )
