from __future__ import annotations

from django.apps import AppConfig


class SentinelConfig(AppConfig):
    name = "sentinel"
    verbose_name = "UptimeSentinel"

    def ready(self) -> None:
        from sentinel import checks  # noqa: F401  (registers the system checks)
        from sentinel.audit import audit_register

        audit_register()
