"""Dashboard pages: thin function views over ``reporting.queries``.

Every page starts from ``monitors_visible_to(request.user)``: members see their projects'
monitors (a role that may not change them gets a 403 on a write)
monitors, staff see all, and anyone else's monitor is a 404.
"""

from __future__ import annotations

import datetime as dt
import hmac
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.cache import cache
from django.core.paginator import Paginator
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from prometheus_client import CONTENT_TYPE_LATEST

from alerting.selectors import maintenance_periods, monitor_incidents
from core.regions import LOCAL
from monitors.forms import MonitorForm
from monitors.heartbeats import heartbeat_ping_path, heartbeat_slug_ping_path
from monitors.models import Monitor
from monitors.probes.ping import figures_together
from monitors.regions import monitor_regions
from monitors.selectors import monitors_visible_to
from monitors.services import monitors_check_now
from projects.pages import current_project_id, require_change, two_factor_first
from projects.roles import Area
from projects.selectors import member_project_ids
from reporting import charts, queries
from reporting.metrics import metrics_text

PAGE_SIZE = 50
SORTS = {
    "name": ("name", "id"),
    "-name": ("-name", "-id"),
    "status": ("status", "name", "id"),
    "checked": ("-last_checked_at", "id"),
    "created": ("-created_at", "-id"),
}
CHART_RANGES = {"24h": "1h", "7d": "1h", "30d": "1h", "90d": "1h"}
FLEET_CACHE_SECONDS = 30


@login_required
def overview(request: HttpRequest) -> HttpResponse:
    """The user's monitors, filtered, searched, sorted and paginated; the page's
    figures come from three queries whatever the page size."""
    if request.method == "GET" and not request.GET and (sent := two_factor_first(request)):
        return sent  # a project of theirs requires a second factor: set it up first
    now = timezone.now()
    # Deferred join: page through ids alone, which the (owner, name, id) and (owner,
    # status, name, id) indexes cover, so a deep OFFSET skips index entries, not rows;
    # then load the page's 50 monitors by primary key.
    ids = _filtered(request, monitors_visible_to(request.user)).values_list("pk", flat=True)
    page = Paginator(ids, PAGE_SIZE).get_page(request.GET.get("page"))
    loaded = Monitor.objects.filter(pk__in=list(page.object_list)).prefetch_related("tags")
    by_pk = {monitor.pk: monitor for monitor in loaded}
    rows = [by_pk[pk] for pk in page.object_list if pk in by_pk]
    summaries = queries.monitor_summaries(monitors=rows, now=now)
    fleet = _fleet(request.user, now)
    context = {
        "page": page,
        "rows": [_overview_row(m, summaries[m.pk]) for m in rows],
        "fleet": fleet,
        "status_counts": [
            (value, label, fleet.status_counts.get(value, 0))
            for value, label in Monitor.Status.choices
        ],
        "sorts": list(SORTS),
        "query": {key: request.GET.get(key, "") for key in ("q", "status", "tag", "sort")},
        "querystring": _querystring_without_page(request),
    }
    return render(request, "reporting/overview.html", context)


def _overview_row(monitor: Monitor, summary: queries.MonitorSummary) -> dict[str, Any]:
    """Plain strings for the template: formatting 50 rows in Python is several times
    cheaper than through template filters, and the overview is the hottest page."""
    return {
        "pk": monitor.pk,
        "name": monitor.name,
        "url": monitor.url if len(monitor.url) <= 60 else monitor.url[:59] + "…",
        **_status_shown(monitor),
        "tags": [tag.name for tag in monitor.tags.all()],
        "uptime_24h": _percent_text(summary.uptime_24h),
        "uptime_7d": _percent_text(summary.uptime_7d),
        "uptime_30d": _percent_text(summary.uptime_30d),
        "last_latency": "—" if summary.last_latency_ms is None else f"{summary.last_latency_ms} ms",
        "spark": charts.sparkline(summary.sparkline),
    }


def _status_shown(monitor: Monitor) -> dict[str, str]:
    """The status a row shows: a heartbeat's own states (new, late) where it has them."""
    if monitor.kind == Monitor.Kind.HEARTBEAT:
        state = monitor.heartbeat_state()
        return {"status": state, "status_label": state.capitalize()}
    return {"status": monitor.status, "status_label": monitor.get_status_display()}


def _percent_text(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f} %"


def _filtered(request: HttpRequest, monitors: QuerySet[Monitor]) -> QuerySet[Monitor]:
    status = request.GET.get("status", "")
    if status in Monitor.Status.values:
        monitors = monitors.filter(status=status)
    if tag := request.GET.get("tag", "").strip():
        monitors = monitors.filter(tags__name=tag.lower())
    if q := request.GET.get("q", "").strip()[:100]:
        monitors = monitors.filter(Q(name__icontains=q) | Q(url__icontains=q))
    order = SORTS.get(request.GET.get("sort", ""), SORTS["name"])
    return monitors.order_by(*order)


def _querystring_without_page(request: HttpRequest) -> str:
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()


def _fleet(user: Any, now: dt.datetime) -> queries.FleetOverview:
    """Cached briefly: the worst-monitor lists read a day of rollups for every monitor."""
    project_ids = None if user.is_staff else sorted(member_project_ids(user))
    key = "fleet:all" if project_ids is None else f"fleet:{','.join(map(str, project_ids))}"
    fleet = cache.get(key)
    if fleet is None:
        fleet = queries.fleet_overview(project_ids=project_ids, now=now)
        cache.set(key, fleet, FLEET_CACHE_SECONDS)
    return fleet


def _regions(monitor: Monitor, now: dt.datetime) -> list[queries.RegionLatest] | None:
    """Each region's newest check, for a monitor checked from more than one (or from
    another region than the local one); None otherwise."""
    regions = monitor_regions(monitor.regions)
    if regions == (LOCAL,) or monitor.kind not in Monitor.PROBED_KINDS:
        return None
    return queries.region_latest(monitor_id=monitor.pk, regions=regions, now=now)


@login_required
def monitor_detail(request: HttpRequest, pk: int) -> HttpResponse:
    monitor = get_object_or_404(monitors_visible_to(request.user).prefetch_related("tags"), pk=pk)
    now = timezone.now()
    chosen = request.GET.get("range", "30d")
    chosen = chosen if chosen in CHART_RANGES else "30d"
    since = now - queries.WINDOWS[chosen]
    points = queries.latency_series(
        monitor_id=monitor.pk, bucket=CHART_RANGES[chosen], since=since, until=now
    )
    bars = queries.daily_uptime(monitor_id=monitor.pk, days=90, today=now.date())
    windows = {
        name: queries.window_summary(monitor_id=monitor.pk, since=now - span, until=now)
        for name, span in queries.WINDOWS.items()
        if name in ("24h", "7d", "30d", "90d")
    }
    alerting = monitor_incidents(monitor=monitor, now=now)
    # The bars are whole UTC days, the oldest first.
    bars_since = dt.datetime.combine(bars[0].day, dt.time(), tzinfo=dt.UTC) if bars else now
    bars_until = bars_since + dt.timedelta(days=len(bars))
    checks = queries.recent_checks(monitor_id=monitor.pk, limit=20)
    context = {
        "monitor": monitor,
        "chosen": chosen,
        "ranges": list(CHART_RANGES),
        "chart": charts.latency_chart(
            points,
            since=since,
            until=now,
            maintenance=maintenance_periods(windows=alerting.windows, since=since, until=now),
        ),
        "bars": charts.uptime_bars(
            bars,
            maintenance=maintenance_periods(
                windows=alerting.windows, since=bars_since, until=bars_until
            ),
        ),
        "windows": windows,
        "checks": checks,
        # Loss and round trip of a ping monitor's recent checks, read from their messages.
        "ping": figures_together(c.error for c in checks) if monitor.kind == "ping" else None,
        "tls_expires_at": queries.tls_expiry(monitor_id=monitor.pk, now=now),
        "alerting": alerting,
        "regions": _regions(monitor, now),
    }
    if monitor.kind == Monitor.Kind.HEARTBEAT:
        context["heartbeat"] = _heartbeat_context(request, monitor, now)
    return render(request, "reporting/monitor.html", context)


def _heartbeat_context(request: HttpRequest, monitor: Monitor, now: dt.datetime) -> dict[str, Any]:
    """What the monitor page shows of a heartbeat: its ping URLs, state and last pings."""
    slug_path = heartbeat_slug_ping_path(monitor)
    return {
        "state": monitor.heartbeat_state(now=now),
        "ping_url": request.build_absolute_uri(heartbeat_ping_path(monitor)),
        "slug_ping_url": slug_path and request.build_absolute_uri(slug_path),
        "due_at": monitor.heartbeat_due_at(),
        "pings": queries.heartbeat_pings(monitor_id=monitor.pk, limit=20),
    }


@login_required
@require_POST
def monitor_check_now(request: HttpRequest, pk: int) -> HttpResponse:
    monitor = get_object_or_404(monitors_visible_to(request.user), pk=pk)
    require_change(request, monitor.project_id, Area.MONITORS)
    if monitors_check_now(monitor_ids=[monitor.pk]):
        messages.success(request, "A check is queued; the result shows within seconds.")
    else:
        messages.warning(request, "This monitor is paused; resume it to check it.")
    return redirect("dashboard-monitor", pk=monitor.pk)


@login_required
def monitor_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    monitor = get_object_or_404(monitors_visible_to(request.user), pk=pk) if pk else None
    project_id = monitor.project_id if monitor else current_project_id(request)
    if request.method == "POST":
        require_change(request, project_id, Area.MONITORS)
    form = MonitorForm(request.POST or None, instance=monitor)
    if request.method == "POST" and form.is_valid():
        assert isinstance(request.user, User)
        # A new monitor is created by the user; an existing one keeps its creator.
        saved = form.save_through_services(owner=request.user, project_id=project_id)
        if saved is not None:
            messages.success(request, f"Saved {saved.name}.")
            return HttpResponseRedirect(reverse("dashboard-monitor", args=[saved.pk]))
    return render(request, "reporting/monitor_form.html", {"form": form, "monitor": monitor})


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus scrape endpoint (text format 0.0.4).

    Fleet-wide figures are the operators', not every user's: a scraper sends
    ``Authorization: Bearer <SENTINEL_METRICS_TOKEN>``, a person needs a staff session,
    and anyone else gets a 404 (development without a token is open).
    """
    if not metrics_allowed(request):
        raise Http404
    return HttpResponse(metrics_text(), content_type=CONTENT_TYPE_LATEST)


def metrics_allowed(request: HttpRequest) -> bool:
    token = settings.SENTINEL_METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if given and hmac.compare_digest(given.encode(), token.encode()):
            return True
    elif settings.DEBUG:
        return True
    return bool(request.user.is_authenticated and request.user.is_staff)
