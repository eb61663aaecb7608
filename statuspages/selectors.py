"""What a status page shows, read once and shared by its HTML, JSON, feed and badge.

The figures come from each monitor's rollup summary (``telemetry.summary``: one row per
monitor, kept by the rollup fold), never from raw results or 90 rollup rows per
monitor; a page of 1,000 monitors is two primary-key reads of that table, the page's
configuration and a few small queries for incidents and maintenance.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from django.db.models import Prefetch, QuerySet

from alerting.selectors import maintenance_windows_of, period_text
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
    # The last 24 whole hours' means, oldest first; empty unless the page shows charts.
    hourly_latency: list[float | None]
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
    entries = [
        Entry(*row)
        for row in PageMonitor.objects.filter(page=page)
        .order_by("group__position", "group_id", "position", "id")
        .values_list(
            "pk",
            "display_name",
            "group_id",
            "group__name",
            "monitor_id",
            "monitor__project_id",
            "monitor__status",
            "monitor__enabled",
            "monitor__url",
        )
    ]
    summaries = summaries_read(monitor_ids=[e.monitor_id for e in entries])
    in_maintenance = _in_maintenance({e.monitor_id: e.project_id for e in entries}, now)
    errors = _errors(page, entries)
    groups: dict[int, GroupState] = {}
    for entry in entries:
        group = groups.setdefault(entry.group_id, GroupState(entry.group_name))
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


class Entry(NamedTuple):
    """A monitor on the page, with the few monitor fields the page needs (a values
    query: 1,000 full Monitor objects cost more than the rest of the page)."""

    pk: int
    display_name: str
    group_id: int
    group_name: str
    monitor_id: int
    project_id: int
    status: str
    enabled: bool
    url: str


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
    entry: Entry,
    page: StatusPage,
    summary: RollupSummary,
    in_maintenance: set[int],
    errors: dict[int, str],
    now: dt.datetime,
) -> MonitorLine:
    days = summary.day_counts(today=now.astimezone(dt.UTC).date(), count=BAR_DAYS)
    # The 24 whole hours before the current one (sparkline), and the current one.
    hours = summary.hour_slots(now=now, count=25)
    last_day = hours[1:]
    checks = sum(h[0] for h in last_day)
    failures = sum(h[1] for h in last_day)
    latencies = [_mean(h) for h in hours]
    latest = next((value for value in reversed(latencies[1:]) if value is not None), None)
    return MonitorLine(
        entry_id=entry.pk,
        monitor_id=entry.monitor_id,
        name=entry.display_name,
        status=_monitor_status(entry, in_maintenance),
        uptime_24h=100.0 * (checks - failures) / checks if checks else None,
        uptime_30d=_uptime(days[-30:]),
        uptime_90d=_uptime(days),
        latency_ms=latest,
        days=days,
        hourly_latency=latencies[:-1] if page.show_response_times else [],
        url=entry.url if page.show_urls else None,
        error=errors.get(entry.monitor_id),
    )


def _mean(slot: tuple[int, int, int]) -> float | None:
    ok = slot[0] - slot[1]
    return slot[2] / ok if ok > 0 else None


def _uptime(days: list[tuple[int, int]]) -> float | None:
    checks = failures = 0
    for day_checks, day_failures in days:
        checks += day_checks
        failures += day_failures
    return None if not checks else 100.0 * (checks - failures) / checks


def _monitor_status(entry: Entry, in_maintenance: set[int]) -> str:
    if not entry.enabled or entry.status == Monitor.Status.PAUSED:
        return "paused"
    if entry.monitor_id in in_maintenance:
        return "maintenance"
    if entry.status == Monitor.Status.DOWN:
        return "down"
    if entry.status == Monitor.Status.UP:
        return "operational"
    return "unknown"


def _in_maintenance(projects: dict[int, int], now: dt.datetime) -> set[int]:
    windows = maintenance_windows_of(projects=projects)
    return {pk for pk, found in windows.items() if any(w.is_active(now) for w in found)}


def _errors(page: StatusPage, entries: list[Entry]) -> dict[int, str]:
    """The checker's first failure message of each down monitor's open incident, only
    if the page shows error texts (``incident_monitor_started_idx``)."""
    down = [e.monitor_id for e in entries if e.status == Monitor.Status.DOWN]
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
