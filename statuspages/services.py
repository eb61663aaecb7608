"""Writes to status pages, for the dashboard and the API alike.

Every monitor put on a page, named in a post or published from the checker must be
of the page's project, else ``ValidationError`` naming the field and nothing is saved
(who may write to the page at all is the callers' access rule,
``monitors.selectors.visible_to`` and the member's role). Each
write moves the page's ``updated_at``, so its cached state (``statuspages.render``)
is replaced at once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from alerting.models import MaintenanceWindow
from monitors.models import Incident, Monitor
from statuspages.domains import domains
from statuspages.models import (
    MonitorBadge,
    PageGroup,
    PageIncident,
    PageIncidentUpdate,
    PageMaintenance,
    PageMonitor,
    StatusDomain,
    StatusPage,
)
from statuspages.validators import logo_type, validate_domain

Layout = Sequence[
    dict[str, Any]
]  # [{"name": str, "monitors": [{"monitor": id, "display_name": str}]}]


def _owned_monitors(page: StatusPage, ids: Sequence[int], *, field: str) -> dict[int, Monitor]:
    found = Monitor.objects.filter(project_id=page.project_id).in_bulk(list(ids))
    missing = sorted(set(ids) - set(found))
    if missing:
        raise ValidationError({field: f"No such monitor: {', '.join(map(str, missing))}."})
    return found


@transaction.atomic
def page_layout_set(*, page: StatusPage, layout: Layout) -> None:
    """Replace the page's groups and monitors with ``layout``, in its order (this is
    how groups and monitors are reordered). A monitor appears once per page; its
    public name defaults to the monitor's name."""
    ids = [int(item["monitor"]) for group in layout for item in group.get("monitors", [])]
    if len(ids) != len(set(ids)):
        raise ValidationError({"groups": "A monitor can be on a page only once."})
    monitors = _owned_monitors(page, ids, field="groups")
    page.groups.all().delete()
    for position, group in enumerate(layout):
        name = str(group.get("name", "")).strip() or "Services"
        saved = PageGroup.objects.create(page=page, name=name[:120], position=position)
        PageMonitor.objects.bulk_create(
            PageMonitor(
                page=page,
                group=saved,
                monitor=monitors[int(item["monitor"])],
                display_name=(
                    str(item.get("display_name") or "").strip()
                    or monitors[int(item["monitor"])].name
                )[:120],
                position=index,
            )
            for index, item in enumerate(group.get("monitors", []))
        )
    page.touch()


@transaction.atomic
def page_domains_set(*, page: StatusPage, names: Sequence[str]) -> None:
    """Replace the page's custom domains; a domain of another page is refused."""
    wanted = [name.strip().lower().rstrip(".") for name in names if name.strip()]
    for name in wanted:
        try:
            validate_domain(name)
        except ValidationError as error:
            raise ValidationError({"domains": error.messages}) from error
    taken = StatusDomain.objects.filter(domain__in=wanted).exclude(page=page)
    if taken.exists():
        raise ValidationError({"domains": f"{taken[0].domain} belongs to another page."})
    page.domains.exclude(domain__in=wanted).delete()
    have = set(page.domains.values_list("domain", flat=True))
    StatusDomain.objects.bulk_create(
        StatusDomain(page=page, domain=name) for name in dict.fromkeys(wanted) if name not in have
    )
    transaction.on_commit(domains.forget)
    page.touch()


def page_logo_set(*, page: StatusPage, data: bytes | None) -> None:
    """Set (PNG, JPEG, GIF or WebP, at most 256 KiB) or remove (None) the logo;
    ``ValidationError`` on the ``logo`` field otherwise."""
    if data is None:
        page.logo, page.logo_type = None, ""
    else:
        try:
            page.logo_type = logo_type(data)
        except ValidationError as error:
            raise ValidationError({"logo": error.messages}) from error
        page.logo = data
    page.save(update_fields=["logo", "logo_type", "updated_at"])


@transaction.atomic
def page_incident_post(
    *,
    page: StatusPage,
    title: str,
    body: str,
    status: str = PageIncident.Status.INVESTIGATING,
    impact: str = PageIncident.Impact.MINOR,
    monitor_ids: Sequence[int] = (),
    source: Incident | None = None,
    at: dt.datetime | None = None,
) -> PageIncident:
    """Post an incident on ``page`` with its first update (``body``, Markdown)."""
    at = at or timezone.now()
    monitors = _owned_monitors(page, monitor_ids, field="monitors")
    incident = PageIncident(
        page=page, title=title, status=status, impact=impact, source=source, started_at=at
    )
    if status == PageIncident.Status.RESOLVED:
        incident.resolved_at = at
    incident.full_clean(exclude=["page", "source"])
    incident.save()
    incident.monitors.set(monitors.values())
    PageIncidentUpdate.objects.create(incident=incident, status=status, body=body, created_at=at)
    page.touch()
    return incident


@transaction.atomic
def page_incident_update(
    *, incident: PageIncident, status: str, body: str, at: dt.datetime | None = None
) -> PageIncidentUpdate:
    """Add a timestamped update; the incident takes its status (resolved: ended)."""
    at = at or timezone.now()
    if status not in PageIncident.Status.values:
        raise ValidationError({"status": f"Choose one of {', '.join(PageIncident.Status.values)}."})
    if not body.strip():
        raise ValidationError({"body": "Say what changed."})
    update = PageIncidentUpdate.objects.create(
        incident=incident, status=status, body=body, created_at=at
    )
    incident.status = status
    incident.resolved_at = at if status == PageIncident.Status.RESOLVED else None
    incident.save(update_fields=["status", "resolved_at"])
    incident.page.touch()
    return update


def page_incident_publish(*, page: StatusPage, source: Incident) -> PageIncident:
    """Publish an incident the checker opened as a post on ``page``, in one action: the
    monitor's public name on that page (or its name), "investigating" while it is
    open, "resolved" once it has ended. The checker's error text is not repeated."""
    _owned_monitors(page, [source.monitor_id], field="incident")
    entry = PageMonitor.objects.filter(page=page, monitor_id=source.monitor_id).first()
    name = entry.display_name if entry else source.monitor.name
    ended = source.ended_at is not None
    incident = page_incident_post(
        page=page,
        title=f"{name} unavailable",
        body=f"We are investigating a problem with **{name}**, detected by our checks.",
        impact=PageIncident.Impact.MAJOR,
        monitor_ids=[source.monitor_id],
        source=source,
        at=source.started_at,
    )
    if ended:
        page_incident_update(
            incident=incident,
            status=PageIncident.Status.RESOLVED,
            body=f"**{name}** is available again.",
            at=source.ended_at,
        )
    return incident


def page_maintenance_show(*, page: StatusPage, window_id: int, description: str) -> None:
    """Show a maintenance window of the page's project on the page with ``description``
    (Markdown), or change the description of one shown; ``ValidationError`` on the
    ``window`` field for a window of another project."""
    windows = MaintenanceWindow.objects.filter(project_id=page.project_id)
    window = windows.filter(pk=window_id).first()
    if window is None:
        raise ValidationError({"window": "No such maintenance window."})
    PageMaintenance.objects.update_or_create(
        page=page, window=window, defaults={"description": description}
    )
    page.touch()


def page_maintenance_hide(*, page: StatusPage, window_id: int) -> None:
    page.maintenance.filter(window_id=window_id).delete()
    page.touch()


def monitor_badge_key(*, monitor: Monitor) -> str:
    """The monitor's badge key, made (random) the first time it is asked for."""
    badge, _ = MonitorBadge.objects.get_or_create(monitor=monitor)
    return badge.key
