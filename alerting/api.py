"""Alerting endpoints of the API (the rest of /api/v1/ is the reporting app's)."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from alerting.models import Notification
from alerting.services import channel_send_test
from monitors.models import NotificationChannel


class TestNotificationSerializer(serializers.ModelSerializer[Notification]):
    class Meta:
        model = Notification
        fields = ("id", "channel", "event", "status", "attempts", "error", "created_at", "sent_at")


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
