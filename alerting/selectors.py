"""Reads of a monitor's alerting history for the dashboard's monitor page.

The API lists incidents itself (``alerting.api.incident_list``); this module shapes
the same rows for a page, together with the maintenance windows that explain them.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.db.models import Count

from alerting.models import MaintenanceWindow, Notification
from monitors.models import Incident, Monitor

UTC_ZONE = ZoneInfo("UTC")
RECENT_INCIDENTS = 20
UPCOMING_MAINTENANCE = 10


@dataclass(frozen=True, slots=True)
class IncidentRow:
    incident: Incident
    duration: str  # so far, for an open incident
    # The outage began inside a maintenance window: its alerts were held.
    in_maintenance: bool


@dataclass(frozen=True, slots=True)
class MaintenancePeriod:
    window: MaintenanceWindow
    starts_at: dt.datetime
    ends_at: dt.datetime
    active: bool

    @property
    def when(self) -> str:
        """The period on its window's clocks, e.g. "2026-07-05 02:00 to 03:00 CEST
        (Europe/Berlin)"."""
        return period_text(self.starts_at, self.ends_at, self.window.zone)


@dataclass(frozen=True, slots=True)
class MonitorIncidents:
    incidents: list[IncidentRow]
    maintenance: list[MaintenancePeriod]
    # Every window of the monitor (its project's only), for the charts' shading.
    windows: list[MaintenanceWindow]


@dataclass(frozen=True, slots=True)
class ShadedPeriod:
    """A maintenance period for a chart, clipped to the chart's range."""

    name: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    zone: ZoneInfo = UTC_ZONE

    @property
    def when(self) -> str:
        """The period on its window's clocks (``period_text``)."""
        return period_text(self.starts_at, self.ends_at, self.zone)


def monitor_incidents(
    *, monitor: Monitor, now: dt.datetime, limit: int = RECENT_INCIDENTS
) -> MonitorIncidents:
    """The monitor's newest ``limit`` incidents (index ``incident_monitor_started_idx``)
    and its current and upcoming maintenance periods, soonest first.

    A fixed number of queries whatever the counts: one for the incidents and the few
    of ``maintenance_windows_for`` (direct windows, tags, tag windows, the windows)."""
    windows = maintenance_windows_for(monitors=[monitor]).get(monitor.pk, [])
    incidents = Incident.objects.filter(monitor_id=monitor.pk).order_by("-started_at", "-id")
    rows = [
        IncidentRow(
            incident=incident,
            duration=_duration_text((incident.ended_at or now) - incident.started_at),
            in_maintenance=any(w.is_active(incident.started_at) for w in windows),
        )
        for incident in incidents[:limit]
    ]
    return MonitorIncidents(incidents=rows, maintenance=_upcoming(windows, now), windows=windows)


def maintenance_periods(
    *, windows: list[MaintenanceWindow], since: dt.datetime, until: dt.datetime
) -> list[ShadedPeriod]:
    """The windows' occurrences between ``since`` and ``until``, oldest first; no query
    (``windows`` is ``MonitorIncidents.windows``, already limited to the project's)."""
    periods = [
        ShadedPeriod(window.name, start, end, window.zone)
        for window in windows
        for start, end in window.periods_between(since, until)
    ]
    return sorted(periods, key=lambda p: (p.starts_at, p.ends_at))


def _upcoming(windows: list[MaintenanceWindow], now: dt.datetime) -> list[MaintenancePeriod]:
    periods = []
    for window in windows:
        if (period := window.next_period(now)) is not None:
            start, end = period
            periods.append(MaintenancePeriod(window, start, end, active=start <= now))
    periods.sort(key=lambda p: (p.starts_at, p.window.pk))
    return periods[:UPCOMING_MAINTENANCE]


def period_text(start: dt.datetime, end: dt.datetime, zone: ZoneInfo) -> str:
    """``start`` to ``end`` as ``zone``'s clocks show them, with the abbreviation in
    force (both, when the clocks change in between) and the zone's name:
    "2026-07-05 02:00 to 03:00 CEST (Europe/Berlin)", "2026-07-05 02:00 to 03:00 UTC",
    "2027-03-28 01:00 CET to 04:00 CEST (Europe/Berlin)"."""
    local_start, local_end = start.astimezone(zone), end.astimezone(zone)
    first, last = local_start.tzname() or "", local_end.tzname() or ""
    end_format = "%H:%M" if local_start.date() == local_end.date() else "%Y-%m-%d %H:%M"
    text = f"{local_start:%Y-%m-%d %H:%M}{' ' + first if first != last else ''} to "
    text += f"{local_end.strftime(end_format)} {last}"
    return text if zone.key == last else f"{text} ({zone.key})"


def _duration_text(delta: dt.timedelta) -> str:
    """Two units are enough to compare outages at a glance: "2 d 3 h", "1 h 5 min"."""
    minutes = max(int(delta.total_seconds() // 60), 0)
    days, hours, minutes = minutes // 1440, minutes // 60 % 24, minutes % 60
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min" if minutes else "< 1 min"


def maintenance_windows_for(*, monitors: Iterable[Monitor]) -> dict[int, list[MaintenanceWindow]]:
    """Each monitor's maintenance windows, directly or through its tags (same project
    only: tags are global, so another project's window on a tag must not silence your
    monitor)."""
    return maintenance_windows_of(projects={m.pk: m.project_id for m in monitors})


def maintenance_windows_of(*, projects: dict[int, int]) -> dict[int, list[MaintenanceWindow]]:
    """``maintenance_windows_for`` by ``{monitor id: project id}``, for callers that read
    many monitors as values rather than objects (a status page)."""
    if not projects:
        return {}
    pairs = set(
        MaintenanceWindow.monitors.through.objects.filter(monitor_id__in=projects).values_list(
            "monitor_id", "maintenancewindow_id"
        )
    )
    tags: dict[int, set[int]] = defaultdict(set)
    for monitor_id, tag_id in Monitor.tags.through.objects.filter(
        monitor_id__in=projects
    ).values_list("monitor_id", "tag_id"):
        tags[tag_id].add(monitor_id)
    if tags:
        for tag_id, window_id in MaintenanceWindow.tags.through.objects.filter(
            tag_id__in=tags
        ).values_list("tag_id", "maintenancewindow_id"):
            pairs |= {(monitor_id, window_id) for monitor_id in tags[tag_id]}
    windows = MaintenanceWindow.objects.in_bulk({w for _, w in pairs})
    found: dict[int, list[MaintenanceWindow]] = defaultdict(list)
    for monitor_id, window_id in pairs:
        window = windows[window_id]
        if window.project_id == projects[monitor_id]:
            found[monitor_id].append(window)
    return found


def notification_counts() -> dict[str, int]:
    """For ``/metrics``: notifications by status (one GROUP BY)."""
    return dict(
        Notification.objects.order_by()
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
