"""The owner's alerting screens, mounted under /dashboard/ (``alerting.dashboard``)."""

from __future__ import annotations

from django.urls import path

from alerting import dashboard

urlpatterns = [
    path("channels/", dashboard.channel_list, name="alerting-channels"),
    path("channels/new/", dashboard.channel_edit, name="alerting-channel-new"),
    path("channels/<int:pk>/edit/", dashboard.channel_edit, name="alerting-channel-edit"),
    path("channels/<int:pk>/delete/", dashboard.channel_delete, name="alerting-channel-delete"),
    path("channels/<int:pk>/test/", dashboard.channel_test, name="alerting-channel-test"),
    path("monitors/<int:monitor_pk>/rules/", dashboard.rule_list, name="alerting-rules"),
    path("monitors/<int:monitor_pk>/rules/new/", dashboard.rule_edit, name="alerting-rule-new"),
    path("rules/<int:pk>/edit/", dashboard.rule_edit, name="alerting-rule-edit"),
    path("rules/<int:pk>/delete/", dashboard.rule_delete, name="alerting-rule-delete"),
    path("maintenance/", dashboard.window_list, name="alerting-windows"),
    path("maintenance/new/", dashboard.window_edit, name="alerting-window-new"),
    path("maintenance/<int:pk>/edit/", dashboard.window_edit, name="alerting-window-edit"),
    path("maintenance/<int:pk>/delete/", dashboard.window_delete, name="alerting-window-delete"),
]
