"""A status page's live part (banner, incidents, maintenance, monitors) as HTML and as
JSON, each cached briefly in Redis for every visitor alike.

The monitor rows are built here in Python rather than in a template: a page of 1,000
monitors has 90,000 daily bars, which a template loop would take most of a second
over. The cache key carries the page's ``updated_at`` (moved by every edit, incident
post and update), so an owner's change shows at once; the monitors' figures are at
most ``SENTINEL_STATUS_PAGE_CACHE_SECONDS`` old.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from html import escape
from typing import Any, TypeVar

import orjson
from django.conf import settings
from django.core.cache import cache
from django.template.loader import render_to_string
from django.utils import timezone

from reporting.charts import sparkline
from statuspages.models import PageIncident, StatusPage
from statuspages.selectors import (
    BAR_DAYS,
    MONITOR_LABELS,
    MaintenanceRow,
    MonitorLine,
    PageState,
    page_state,
)
from statuspages.text import markdown_html

T = TypeVar("T")


def _cached(page: StatusPage, kind: str, compute: Callable[[], T]) -> T:
    """``compute()``, kept in this process and in Redis for the cache time: a page of
    1,000 monitors is megabytes of HTML, which Redis would hand over on every view."""
    seconds = settings.SENTINEL_STATUS_PAGE_CACHE_SECONDS
    if seconds <= 0:
        return compute()
    key = f"statuspage:{kind}:{page.pk}:{page.updated_at.timestamp():.6f}"
    now = time.monotonic()
    kept = _local.get(key)
    if kept is not None and kept[0] > now:
        return kept[1]
    found = cache.get(key)
    if found is None:
        found = compute()
        cache.set(key, found, seconds)
    # Kept here no longer than Redis would (it may have had it for a while already).
    ttl = getattr(cache, "ttl", None)  # django-redis: what Redis has left
    remaining = seconds if ttl is None else max(int(ttl(key) or 0), 0)
    _local[key] = (now + min(seconds, remaining), found)
    while len(_local) > LOCAL_ENTRIES:
        _local.pop(next(iter(_local)))
    return found


LOCAL_ENTRIES = 32
_local: dict[str, tuple[float, Any]] = {}


def live_fragment(*, page: StatusPage) -> str:
    """The page's live part as HTML (the JavaScript refresh swaps it in)."""
    return _cached(page, "html", lambda: _fragment(page_state(page=page, now=timezone.now())))


def summary_json(*, page: StatusPage) -> bytes:
    """The page's state as JSON (``docs/status-pages.md`` shows the shape)."""
    return _cached(
        page,
        "json",
        lambda: orjson.dumps(summary_data(page, page_state(page=page, now=timezone.now()))),
    )


def page_overall(*, page: StatusPage) -> str:
    """The page's banner state (for its badge), cached like the rest."""
    return _cached(page, "overall", lambda: page_state(page=page, now=timezone.now()).overall)


# --- HTML ----------------------------------------------------------------------------


def _fragment(state: PageState) -> str:
    first = state.today - dt.timedelta(days=BAR_DAYS - 1)
    dates = [(first + dt.timedelta(days=i)).isoformat() for i in range(BAR_DAYS)]
    groups = [
        (group.name, "".join(_monitor_html(line, dates) for line in group.monitors))
        for group in state.groups
    ]
    return render_to_string(
        "statuspages/live.html",
        {
            "state": state,
            "groups": groups,
            "incidents": [incident_view(i) for i in state.active_incidents],
            "maintenance": [_maintenance_view(m) for m in state.maintenance],
        },
    )


def _monitor_html(line: MonitorLine, dates: list[str]) -> str:
    """One monitor's row: name, status, uptimes, latency and the 90 daily bars (a
    tooltip per day), all values escaped or numbers."""
    extra = ""
    if line.url:
        extra += f'<div class="muted small">{escape(line.url)}</div>'
    if line.error:
        extra += f'<div class="error small">{escape(line.error)}</div>'
    latency = "" if line.latency_ms is None else f"{line.latency_ms:.0f} ms"
    chart = sparkline(line.hourly_latency) if line.hourly_latency else ""
    return (
        f'<li class="monitor" data-status="{line.status}">'
        f'<div class="head"><span class="name">{escape(line.name)}</span>'
        f'<span class="pill s-{line.status}">{MONITOR_LABELS[line.status]}</span></div>{extra}'
        f"{_bars(line.days, dates)}"
        f'<div class="figures"><span>24 h {_percent(line.uptime_24h)}</span>'
        f"<span>30 d {_percent(line.uptime_30d)}</span>"
        f"<span>90 d {_percent(line.uptime_90d)}</span>"
        f'<span class="latency">{latency}{chart}</span></div></li>'
    )


def _bars(days: list[tuple[int, int]], dates: list[str]) -> str:
    parts = [f'<div class="bars" role="img" aria-label="Daily uptime, last {len(days)} days">']
    for (checks, failures), date in zip(days, dates, strict=True):
        if not checks:
            parts.append(f'<i class="b0" title="{date} no data"></i>')
        elif not failures:
            parts.append(f'<i class="b1" title="{date} 100 %"></i>')
        else:
            percent = 100.0 * (checks - failures) / checks
            level = 1 if percent >= 99.9 else 2 if percent >= 99 else 3
            title = f"{date} {percent:.2f} % ({failures}/{checks} failed)"
            parts.append(f'<i class="b{level}" title="{title}"></i>')
    parts.append("</div>")
    return "".join(parts)


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f} %"


def incident_view(incident: PageIncident) -> dict[str, Any]:
    """An incident and its timeline, Markdown rendered and sanitised."""
    return {
        "incident": incident,
        "updates": [
            {"update": update, "html": markdown_html(update.body)}
            for update in incident.updates.all()
        ],
    }


def _maintenance_view(row: MaintenanceRow) -> dict[str, Any]:
    return {"row": row, "html": markdown_html(row.description)}


# --- JSON ----------------------------------------------------------------------------


def summary_data(page: StatusPage, state: PageState) -> dict[str, Any]:
    """The JSON of ``summary.json``: plain values, times in ISO 8601 UTC."""
    first = state.today - dt.timedelta(days=BAR_DAYS - 1)
    return {
        "page": {"slug": page.slug, "title": page.title},
        "status": state.overall,
        "status_text": state.overall_label,
        "generated_at": state.generated_at.isoformat(),
        "days_from": first.isoformat(),
        "groups": [
            {"name": group.name, "monitors": [_monitor_data(line) for line in group.monitors]}
            for group in state.groups
        ],
        "incidents": [_incident_data(incident) for incident in state.active_incidents],
        "maintenance": [
            {
                "name": row.name,
                "description": row.description,
                "starts_at": row.starts_at.isoformat(),
                "ends_at": row.ends_at.isoformat(),
                "active": row.active,
            }
            for row in state.maintenance
        ],
    }


def _monitor_data(line: MonitorLine) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": line.name,
        "status": line.status,
        "uptime": {"24h": line.uptime_24h, "30d": line.uptime_30d, "90d": line.uptime_90d},
        "latency_ms": None if line.latency_ms is None else round(line.latency_ms, 1),
        # Uptime % per UTC day from days_from, null without checks.
        "daily_uptime": [
            None if not checks else round(100.0 * (checks - failures) / checks, 3)
            for checks, failures in line.days
        ],
    }
    if line.url is not None:
        data["url"] = line.url
    if line.error is not None:
        data["error"] = line.error
    return data


def _incident_data(incident: PageIncident) -> dict[str, Any]:
    return {
        "id": incident.pk,
        "title": incident.title,
        "status": incident.status,
        "impact": incident.impact,
        "started_at": incident.started_at.isoformat(),
        "resolved_at": incident.resolved_at.isoformat() if incident.resolved_at else None,
        "updates": [
            {"status": u.status, "body": u.body, "created_at": u.created_at.isoformat()}
            for u in incident.updates.all()
        ],
    }
