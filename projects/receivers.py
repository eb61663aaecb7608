"""Signal receivers of the projects app (connected in ``ProjectsConfig.ready``)."""

from __future__ import annotations

from typing import Any

from projects.models import personal_project_id


def personal_project_for_new_user(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    """Give a new user their personal project (owner role)."""
    if created and not kwargs.get("raw"):
        personal_project_id(user_id=instance.pk)
