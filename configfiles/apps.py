from __future__ import annotations

from django.apps import AppConfig


class ConfigfilesConfig(AppConfig):
    name = "configfiles"
    verbose_name = "Configuration as code"
    default_auto_field = "django.db.models.BigAutoField"
