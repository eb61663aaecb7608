from __future__ import annotations

from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Holds the infrastructure commands (``ensure_database``, ``preflight``)."""

    name = "core"
    verbose_name = "Infrastructure"
