from __future__ import annotations

from django.apps import AppConfig


class ReportingConfig(AppConfig):
    name = "reporting"
    verbose_name = "Reporting"

    def ready(self) -> None:
        from reporting import checks  # noqa: F401 (registers the system checks)
