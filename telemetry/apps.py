from __future__ import annotations

from django.apps import AppConfig
from django.db.models.signals import post_delete


class TelemetryConfig(AppConfig):
    name = "telemetry"
    verbose_name = "Telemetry (raw check results)"

    def ready(self) -> None:
        from monitors.models import Monitor
        from telemetry.ingest import monitor_deleted

        post_delete.connect(monitor_deleted, sender=Monitor, dispatch_uid="telemetry-monitor")
