"""The record of each configuration apply that changed something (admin: history)."""

from __future__ import annotations

from collections.abc import Sequence

from django.conf import settings
from django.contrib.auth.models import User
from django.db import models

from configfiles.scope import Scope
from projects.models import InProject


class ConfigApply(InProject):
    """One apply of a configuration file or an import: whose objects, by whom, from
    where, and the changes it made (the lines ``config_apply --dry-run`` prints)."""

    class Source(models.TextChoices):
        COMMAND = "command", "manage.py config_apply"
        API = "api", "API"
        UPTIME_KUMA = "uptime_kuma", "Uptime Kuma import"
        GATUS = "gatus", "Gatus import"

    # Who the apply created objects as (NULL once their account is deleted).
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="config_applies",
    )
    applied_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The API user; empty for a manage.py command.",
    )
    source = models.CharField(max_length=12, choices=Source.choices)
    applied_at = models.DateTimeField(auto_now_add=True)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    deleted = models.PositiveIntegerField(default=0)
    changes = models.TextField(help_text="One line per change, as the dry run prints them.")

    class Meta:
        ordering = ["-applied_at", "-id"]
        verbose_name = "configuration apply"
        indexes = [
            # The admin's list of an owner's applies, newest first.
            models.Index(fields=["owner", "-applied_at"], name="configapply_owner_idx"),
        ]

    def __str__(self) -> str:
        return (
            f"{self.get_source_display()} for {self.owner_id} at {self.applied_at:%Y-%m-%d %H:%M}"
        )

    @classmethod
    def record(
        cls,
        *,
        scope: Scope,
        changes: Sequence[tuple[str, str]],
        applied_by: User | None,
        source: str,
    ) -> ConfigApply:
        """Save the record of an apply; ``changes`` are (action, line) pairs, action
        one of create, update, delete."""
        actions = [action for action, _ in changes]
        return cls.objects.create(
            owner=scope.actor,
            project=scope.project,
            applied_by=applied_by,
            source=source,
            created=actions.count("create"),
            updated=actions.count("update"),
            deleted=actions.count("delete"),
            changes="\n".join(line for _, line in changes),
        )
