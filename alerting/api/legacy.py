"""The two alerting endpoints from before the alerting resources had routes of their
own, kept for existing scripts and marked deprecated in the schema:
``/alerting/incidents`` (now ``/incidents/``, paged) and ``/alerting/channels/<id>/test``
(now ``/channels/<id>/test/``)."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from alerting.api.serializers import IncidentSerializer, TestNotificationSerializer
from alerting.api.views import channel_test_response
from alerting.models import NotificationChannel
from monitors.models import Incident
from monitors.selectors import visible_to

MAX_INCIDENTS = 200


class IncidentListParams(serializers.Serializer[Any]):
    monitor = serializers.IntegerField(required=False, min_value=1, help_text="only this monitor")
    open = serializers.BooleanField(required=False, default=False, help_text="only open ones")
    limit = serializers.IntegerField(
        required=False, default=50, min_value=1, max_value=MAX_INCIDENTS, help_text="how many"
    )


@extend_schema(
    parameters=[IncidentListParams],
    responses=IncidentSerializer(many=True),
    deprecated=True,
    summary="Incidents, newest first, not paged (use /api/v1/incidents/)",
)
@api_view(["GET"])
def incident_list(request: Request) -> Response:
    """The incidents of the monitors you may see, newest first; ``?monitor=<id>``,
    ``?open=true``, ``?limit=`` (1 to 200, default 50). A bad parameter is a 400 naming
    it."""
    params = IncidentListParams(data=request.query_params)
    params.is_valid(raise_exception=True)
    incidents = visible_to(request.user, Incident.objects.all(), project="monitor__project")
    if params.validated_data.get("monitor") is not None:
        incidents = incidents.filter(monitor_id=params.validated_data["monitor"])
    if params.validated_data["open"]:
        incidents = incidents.filter(open_monitor_id__isnull=False)
    rows = incidents.order_by("-started_at", "-id")[: params.validated_data["limit"]]
    return Response(IncidentSerializer(rows, many=True).data)


@extend_schema(
    request=None,
    responses={200: TestNotificationSerializer, 502: TestNotificationSerializer},
    deprecated=True,
    summary="Send a test notification now (use /api/v1/channels/{id}/test/)",
)
@api_view(["POST"])
def channel_test(request: Request, pk: int) -> Response:
    """Send a test notification through one of your channels now; says whether it went."""
    channel = get_object_or_404(visible_to(request.user, NotificationChannel.objects.all()), pk=pk)
    return channel_test_response(channel)
