"""The audit trail: which objects are recorded, and who the actor is.

django-auditlog writes a ``LogEntry`` (who, when, create/update/delete, each changed
field's old and new value) from the model signals of every save and delete of a
registered model, whichever writer made it (admin, dashboard, API, configuration
applies, imports); the admin shows them under "Log entries". Pausing and resuming in
bulk (one UPDATE, no model signals) is recorded from ``monitors_enabled_changed``; the
probes' live state is not a person's change and is left out.
"""

from __future__ import annotations

from typing import Any

from auditlog.middleware import AuditlogMiddleware
from auditlog.models import LogEntry
from auditlog.registry import auditlog
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from alerting.models import AlertRule, MaintenanceWindow, NotificationChannel
from configfiles.models import ConfigApply
from monitors.models import Monitor, Tag
from monitors.signals import monitors_enabled_changed
from projects.models import ApiKey, Invitation, Membership, Project

# Written by the probes' path in bulk, or derived: not a person's change.
MONITOR_NOT_AUDITED = [
    *sorted(Monitor.LIVE_STATE_FIELDS - {"enabled"}),
    "created_at",
    "updated_at",
]


def audit_register() -> None:
    """Record the configuration objects (called once, when Django starts)."""
    auditlog.register(Monitor, exclude_fields=MONITOR_NOT_AUDITED, m2m_fields={"tags"})
    auditlog.register(Tag)
    auditlog.register(AlertRule, m2m_fields={"channels"})
    # A channel's config holds its secrets (a Slack URL, a webhook's signing secret); an
    # old secret must not outlive its rotation in the log, so the config is left out.
    auditlog.register(NotificationChannel, exclude_fields=["config", "created_at"])
    auditlog.register(MaintenanceWindow, m2m_fields={"monitors", "tags"})
    auditlog.register(ConfigApply)
    # Each entry carries its project (``get_additional_data``): the project's audit page.
    auditlog.register(Project, exclude_fields=["created_at"])
    auditlog.register(Membership, exclude_fields=["created_at"])
    # A key's hash and an invitation's are not secrets, but nobody needs them in a log;
    # a key's last use is not a change.
    auditlog.register(ApiKey, exclude_fields=["hashed", "last_used_at", "created_at"])
    auditlog.register(Invitation, exclude_fields=["hashed", "created_at"])
    monitors_enabled_changed.connect(monitors_enabled_audit, dispatch_uid="audit-enabled")


def monitors_enabled_audit(*, monitor_ids: list[int], enabled: bool, **_: Any) -> None:
    """One entry per monitor paused or resumed in bulk, as a save of ``enabled`` is."""
    change = {"enabled": [str(not enabled), str(enabled)]}
    for monitor in Monitor.objects.filter(pk__in=monitor_ids).only("pk", "name", "project_id"):
        LogEntry.objects.log_create(monitor, action=LogEntry.Action.UPDATE, changes=change)


class AuditActorMiddleware(AuditlogMiddleware):
    """auditlog's middleware, with the actor read when each entry is written rather
    than when the request comes in: the API authenticates a token inside the view
    (DRF sets ``request.user`` then), after the middleware has run."""

    @staticmethod
    def _get_actor(request: HttpRequest) -> Any:
        def actor() -> Any:
            user = getattr(request, "user", None)
            return user if user is not None and user.is_authenticated else None

        return SimpleLazyObject(actor)


def project_entries(*, project_id: int, limit: int) -> QuerySet[LogEntry]:
    """The newest ``limit`` entries of one project's objects (deleted ones included),
    found by the project each entry carries (``get_additional_data``)."""
    entries = LogEntry.objects.filter(additional_data__project=project_id)
    return entries.select_related("actor", "content_type").order_by("-timestamp", "-id")[:limit]
