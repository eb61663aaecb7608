"""What a status page shows, read once and shared by its HTML, JSON, feed and badge.

The figures come from each monitor's rollup summary (``telemetry.summary``: one row per
monitor, kept by the rollup fold), never from raw results or 90 rollup rows per
monitor; a page of 1,000 monitors is two primary-key reads of that table, the page's
configuration and a few small queries for incidents and maintenance.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Prefetch, QuerySet

from alerting.selectors import maintenance_windows_for, period_text
from monitors.models import Incident, Monitor
from statuspages.models import (
    PageIncident,
    PageIncidentUpdate,
    PageMaintenance,
    PageMonitor,
    StatusPage,
)
from telemetry.summary import RollupSummary, summaries_read

BAR_DAYS = 90
UPCOMING_MAINTENANCE_DAYS = 30


class Overall:
    """The banner's states, worst last; ``LABELS`` says them to visitors."""

    OPERATIONAL = "operational"
    MAINTENANCE = "maintenance"
    DEGRADED = "degraded"
    PARTIAL_OUTAGE = "partial_outage"
    MAJOR_OUTAGE = "major_outage"
    LABELS = {
        OPERATIONAL: "All systems operational",
        MAINTENANCE: "Scheduled maintenance in progress",
        DEGRADED: "Degraded performance",
        PARTIAL_OUTAGE: "Partial outage",
        MAJOR_OUTAGE: "Major outage",
    }


MONITOR_LABELS = {
    "operational": "Operational",
    "down": "Down",
    "maintenance": "Maintenance",
    "paused": "Paused",
    "unknown": "No data",
}


@dataclass(slots=True)
class MonitorLine:
    """One monitor as a page shows it: public name, status and figures."""

    entry_id: int
    monitor_id: int
    name: str
    status: str  # a key of MONITOR_LABELS
    uptime_24h: float | None
    uptime_30d: float | None
    uptime_90d: float | None
    latency_ms: float | None  # mean of the latest hour with a success (24 h)
    # (checks, failures) per UTC day, the oldest of BAR_DAYS first, ending today.
    days: list[tuple[int, int]]
    hourly_latency: list[float | None]  # the last 24 hours' means, oldest first
    url: str | None = None  # only when the page shows URLs
    error: str | None = None  # only when the page shows error texts


@dataclass(slots=True)
class GroupState:
    name: str
    monitors: list[MonitorLine] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class MaintenanceRow:
    name: str
    description: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    when: str
    active: bool


@dataclass(slots=True)
class PageState:
    overall: str
    groups: list[GroupState]
    active_incidents: list[PageIncident]
    maintenance: list[MaintenanceRow]
    today: dt.date
    generated_at: dt.datetime

    @property
    def overall_label(self) -> str:
        return Overall.LABELS[self.overall]


def page_state(*, page: StatusPage, now: dt.datetime) -> PageState:
    """Everything the page shows above its incident history, as of ``now``."""
    entries = list(
        PageMonitor.objects.filter(page=page)
        .select_related("group", "monitor")
        .order_by("group__position", "group_id", "position", "id")
    )
    monitors = [entry.monitor for entry in entries]
    summaries = summaries_read(monitor_ids=[m.pk for m in monitors])
    in_maintenance = _in_maintenance(monitors, now)
    errors = _errors(page, monitors)
    groups: dict[int, GroupState] = {}
    for entry in entries:
        group = groups.setdefault(entry.group_id, GroupState(entry.group.name))
        group.monitors.append(
            _line(entry, page, summaries[entry.monitor_id], in_maintenance, errors, now)
        )
    active = list(
        PageIncident.objects.filter(page=page)
        .exclude(status=PageIncident.Status.RESOLVED)
        .prefetch_related(_updates())
    )
    lines = [line for group in groups.values() for line in group.monitors]
    maintenance = _maintenance(page, now)
    return PageState(
        overall=_overall(lines, active, any(m.active for m in maintenance)),
        groups=list(groups.values()),
        active_incidents=active,
        maintenance=maintenance,
        today=now.astimezone(dt.UTC).date(),
        generated_at=now,
    )


def _updates() -> Any:
    return Prefetch("updates", queryset=PageIncidentUpdate.objects.order_by("-created_at", "-id"))


def incident_history(*, page: StatusPage) -> QuerySet[PageIncident]:
    """The page's resolved incidents, newest first, with their updates (a queryset to
    paginate; ``pageincident_page_started_idx``)."""
    return (
        PageIncident.objects.filter(page=page, status=PageIncident.Status.RESOLVED)
        .order_by("-started_at", "-id")
        .prefetch_related(_updates())
    )


def _line(
    entry: PageMonitor,
    page: StatusPage,
    summary: RollupSummary,
    in_maintenance: set[int],
    errors: dict[int, str],
    now: dt.datetime,
) -> MonitorLine:
    monitor = entry.monitor
    today = now.astimezone(dt.UTC).date()
    days = summary.day_counts(today=today, count=BAR_DAYS)
    hourly = summary.hourly(now=now, count=25)[:-1] if page.show_response_times else []
    return MonitorLine(
        entry_id=entry.pk,
        monitor_id=monitor.pk,
        name=entry.display_name,
        status=_monitor_status(monitor, in_maintenance),
        uptime_24h=summary.uptime(window="24h", now=now),
        uptime_30d=_uptime(days[-30:]),
        uptime_90d=_uptime(days),
        latency_ms=summary.last_latency_ms(now=now) if page.show_response_times else None,
        days=days,
        hourly_latency=[p.avg_latency_ms for p in hourly],
        url=monitor.url if page.show_urls else None,
        error=errors.get(monitor.pk),
    )


def _uptime(days: list[tuple[int, int]]) -> float | None:
    checks = sum(c for c, _ in days)
    failures = sum(f for _, f in days)
    return None if not checks else 100.0 * (checks - failures) / checks


def _monitor_status(monitor: Monitor, in_maintenance: set[int]) -> str:
    if not monitor.enabled or monitor.status == Monitor.Status.PAUSED:
        return "paused"
    if monitor.pk in in_maintenance:
        return "maintenance"
    if monitor.status == Monitor.Status.DOWN:
        return "down"
    if monitor.status == Monitor.Status.UP:
        return "operational"
    return "unknown"


def _in_maintenance(monitors: list[Monitor], now: dt.datetime) -> set[int]:
    windows = maintenance_windows_for(monitors=monitors)
    return {pk for pk, found in windows.items() if any(w.is_active(now) for w in found)}


def _errors(page: StatusPage, monitors: list[Monitor]) -> dict[int, str]:
    """The checker's first failure message of each down monitor's open incident, only
    if the page shows error texts (``incident_monitor_started_idx``)."""
    down = [m.pk for m in monitors if m.status == Monitor.Status.DOWN]
    if not page.show_errors or not down:
        return {}
    rows = Incident.objects.filter(monitor_id__in=down, ended_at=None).values_list(
        "monitor_id", "first_failure_message"
    )
    return dict(rows)


def _maintenance(page: StatusPage, now: dt.datetime) -> list[MaintenanceRow]:
    """The page's published maintenance windows in progress or starting within 30 days,
    soonest first."""
    rows = []
    horizon = now + dt.timedelta(days=UPCOMING_MAINTENANCE_DAYS)
    for shown in PageMaintenance.objects.filter(page=page).select_related("window"):
        period = shown.window.next_period(now)
        if period is None or period[0] > horizon:
            continue
        start, end = period
        rows.append(
            MaintenanceRow(
                name=shown.window.name,
                description=shown.description,
                starts_at=start,
                ends_at=end,
                when=period_text(start, end, shown.window.zone),
                active=start <= now,
            )
        )
    return sorted(rows, key=lambda row: (row.starts_at, row.name))


def _overall(lines: list[MonitorLine], active: list[PageIncident], maintenance: bool) -> str:
    """Major outage: every monitor down (of those neither paused nor in maintenance),
    or a critical incident; partial: some down, or
    a major incident; degraded: a minor incident; maintenance: a monitor in a window or
    a published window in progress; else operational."""
    impacts = {incident.impact for incident in active}
    watched = [line for line in lines if line.status not in ("paused", "maintenance")]
    down = sum(line.status == "down" for line in watched)
    if (watched and down == len(watched)) or PageIncident.Impact.CRITICAL in impacts:
        return Overall.MAJOR_OUTAGE
    if down or PageIncident.Impact.MAJOR in impacts:
        return Overall.PARTIAL_OUTAGE
    if PageIncident.Impact.MINOR in impacts:
        return Overall.DEGRADED
    if maintenance or any(line.status == "maintenance" for line in lines):
        return Overall.MAINTENANCE
    return Overall.OPERATIONAL
