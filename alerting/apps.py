from __future__ import annotations

from django.apps import AppConfig


class AlertingConfig(AppConfig):
    name = "alerting"
    verbose_name = "Alerting"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from alerting import netguard, receivers, tasks  # noqa: F401  (they register)

        # Every outgoing notification resolves its host through the guard (see netguard).
        netguard.install()
