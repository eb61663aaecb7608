from __future__ import annotations

from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class MonitorsConfig(AppConfig):
    name = "monitors"
    verbose_name = "Monitors"

    def ready(self) -> None:
        # Ingest sits below this app: it is told here which monitors exist and when
        # one is deleted (so that a deleted monitor's late results are dead-lettered).
        from monitors import receivers  # noqa: F401  (connects the live-state receiver)
        from monitors.heartbeats import heartbeat_routes_deleted, heartbeat_routes_saved
        from monitors.models import Monitor
        from monitors.selectors import monitor_ids_existing
        from telemetry.ingest import existing_monitors_register, monitor_deleted

        existing_monitors_register(monitor_ids_existing)
        post_delete.connect(monitor_deleted, sender=Monitor, dispatch_uid="telemetry-monitor")
        # A heartbeat's ping URLs follow its saves and deletion (monitors.heartbeats).
        post_save.connect(heartbeat_routes_saved, sender=Monitor, dispatch_uid="heartbeat-routes")
        post_delete.connect(
            heartbeat_routes_deleted, sender=Monitor, dispatch_uid="heartbeat-routes"
        )
