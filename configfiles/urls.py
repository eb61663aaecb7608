from __future__ import annotations

from django.urls import path

from configfiles import api

app_name = "configfiles"

urlpatterns = [
    path("export", api.ConfigExportView.as_view(), name="config-export"),
    path("apply", api.ConfigApplyView.as_view(), name="config-apply"),
]
