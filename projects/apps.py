from __future__ import annotations

from django.apps import AppConfig


class ProjectsConfig(AppConfig):
    name = "projects"
    verbose_name = "Projects, members and API keys"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.conf import settings
        from django.db.models.signals import post_save

        from projects.receivers import personal_project_for_new_user

        # Every new user gets a personal project (owner role), where their objects
        # go unless they choose another.
        post_save.connect(
            personal_project_for_new_user,
            sender=settings.AUTH_USER_MODEL,
            dispatch_uid="projects.personal_project",
        )
