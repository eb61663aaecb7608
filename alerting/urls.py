from __future__ import annotations

from django.urls import path

from alerting.api import legacy as api

app_name = "alerting"

urlpatterns = [
    path("channels/<int:pk>/test", api.channel_test, name="channel-test"),
    path("incidents", api.incident_list, name="incident-list"),
]
