"""The public side of status pages: the page, its JSON, feed, logo and badges.

Thin views: ``statuspages.access`` says who may see a page (404 otherwise, the same as
for a page that does not exist), ``statuspages.render`` builds and caches what it
shows. A page reached through its custom domain is the same views with the slug the
domain middleware found (``statuspages.middleware``).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.syndication.views import Feed
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_cache_control
from django.utils.feedgenerator import Atom1Feed
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_GET, require_POST

from statuspages import render as page_render
from statuspages.access import page_for_visitor, page_unlock
from statuspages.badges import (
    STATUS_COLOURS,
    badge_svg,
    latency_colour,
    uptime_colour,
)
from statuspages.models import MonitorBadge, PageIncident, StatusPage
from statuspages.selectors import MONITOR_LABELS, Overall, incident_history
from statuspages.text import markdown_html
from telemetry.summary import summaries_read

HISTORY_PAGE_SIZE = 10
BADGE_SECONDS = 60
UPTIME_WINDOWS = ("24h", "7d", "30d", "90d")
BADGE_KINDS = ("status", "uptime", "latency")


def _slug(request: HttpRequest, slug: str | None) -> str:
    """The slug of the URL, or of the custom domain the request came in on."""
    found = slug or getattr(request, "status_page_slug", None)
    if not found:
        raise Http404("No such status page.")
    return found


def _cache_for(response: HttpResponse, page: StatusPage, seconds: int) -> HttpResponse:
    """Public pages may be cached by browsers and proxies; private ones by no one."""
    if page.access == StatusPage.Access.PUBLIC:
        patch_cache_control(response, public=True, max_age=seconds)
    else:
        patch_cache_control(response, private=True, no_store=True)
    return response


@require_GET
def page_view(request: HttpRequest, slug: str | None = None) -> HttpResponse:
    """The page; ``?fragment=1`` answers its live part alone (the refresh script's)."""
    try:
        page = page_for_visitor(request=request, slug=_slug(request, slug))
    except Http404:
        return _locked(request, slug)
    fragment = page_render.live_fragment(page=page)
    if request.GET.get("fragment"):
        return _cache_for(HttpResponse(fragment), page, 15)
    history = Paginator(incident_history(page=page), HISTORY_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    # Carried on into the page's own links only when it is this page's token.
    token = request.GET.get("token", "")
    if page.access == StatusPage.Access.PUBLIC or token != page.access_token:
        token = ""
    context = {
        "page": page,
        "description": markdown_html(page.description),
        "live": fragment,
        "history": history,
        "history_items": [page_render.incident_view(i) for i in history.object_list],
        "token_query": f"token={token}&" if token else "",
        "base": "" if slug is None else reverse("statuspage", args=[page.slug]),
        "refresh_seconds": settings.SENTINEL_STATUS_PAGE_REFRESH_SECONDS,
    }
    return _cache_for(render(request, "statuspages/page.html", context), page, 15)


def _locked(request: HttpRequest, slug: str | None) -> HttpResponse:
    """The 404 of a page this visitor may not see, with a password form: the same for
    a page that does not exist, so it confirms nothing."""
    target = slug or getattr(request, "status_page_slug", None)
    return render(request, "statuspages/locked.html", {"slug": target}, status=404)


@require_POST
@csrf_protect
def page_unlock_view(request: HttpRequest, slug: str | None = None) -> HttpResponse:
    """The password form's POST: unlock this session, back to the page; a wrong
    password (or no such page) is the same 404 as before."""
    page = StatusPage.objects.filter(slug=_slug(request, slug)).first()
    if page is None or not page_unlock(
        request=request, page=page, password=request.POST.get("password", "")
    ):
        return _locked(request, slug)
    return redirect(request.path.removesuffix("unlock/"))


@require_GET
def summary_view(request: HttpRequest, slug: str | None = None) -> HttpResponse:
    page = page_for_visitor(request=request, slug=_slug(request, slug))
    response = HttpResponse(page_render.summary_json(page=page), content_type="application/json")
    if page.access == StatusPage.Access.PUBLIC:
        response["Access-Control-Allow-Origin"] = "*"  # read-only, for embedding
    return _cache_for(response, page, 30)


@require_GET
def logo_view(request: HttpRequest, slug: str | None = None) -> HttpResponse:
    page = page_for_visitor(request=request, slug=_slug(request, slug))
    if not page.logo:
        raise Http404("This page has no logo.")
    response = HttpResponse(bytes(page.logo), content_type=page.logo_type)
    response["Content-Security-Policy"] = "default-src 'none'"
    return _cache_for(response, page, 3600)


class PageFeed(Feed):
    """An Atom feed of the page's incidents, newest first (Django's syndication)."""

    feed_type = Atom1Feed

    def get_object(self, request: HttpRequest, slug: str | None = None) -> StatusPage:
        self.request = request
        return page_for_visitor(request=request, slug=_slug(request, slug))

    def title(self, page: StatusPage) -> str:
        return f"{page.title}: incidents"

    def link(self, page: StatusPage) -> str:
        return reverse("statuspage", args=[page.slug])

    def subtitle(self, page: StatusPage) -> str:
        return f"Incidents and updates of the {page.title} status page."

    def items(self, page: StatusPage) -> list[PageIncident]:
        return list(page.incidents.prefetch_related("updates").order_by("-started_at", "-id")[:30])

    def item_title(self, item: PageIncident) -> str:
        return f"{item.title} ({item.get_status_display()})"

    def item_description(self, item: PageIncident) -> str:
        return "".join(
            f"<p><strong>{u.get_status_display()}</strong> {u.created_at:%Y-%m-%d %H:%M} UTC</p>"
            + markdown_html(u.body)
            for u in item.updates.all()
        )

    def item_link(self, item: PageIncident) -> str:
        return f"{reverse('statuspage', args=[item.page.slug])}#incident-{item.pk}"

    def item_pubdate(self, item: PageIncident) -> object:
        return item.started_at

    def item_updateddate(self, item: PageIncident) -> object:
        latest = max((u.created_at for u in item.updates.all()), default=item.started_at)
        return item.resolved_at or latest


page_feed = require_GET(PageFeed())


def _svg(svg: str) -> HttpResponse:
    response = HttpResponse(svg, content_type="image/svg+xml")
    patch_cache_control(response, public=True, max_age=BADGE_SECONDS)
    response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return response


@require_GET
def page_badge(request: HttpRequest, key: str) -> HttpResponse:
    """The whole page's status, at the page's badge key (works for private pages too:
    the key is the capability)."""
    page = get_object_or_404(StatusPage, badge_key=key)
    overall = page_render.page_overall(page=page)
    label = request.GET.get("label", "status")[:40]
    message = Overall.LABELS[overall].lower().replace("all systems ", "")
    return _svg(badge_svg(label=label, message=message, colour=STATUS_COLOURS[overall]))


@require_GET
def monitor_badge(request: HttpRequest, key: str, kind: str) -> HttpResponse:
    """A monitor's status, uptime (``?window=24h|7d|30d|90d``, 30d by default) or
    latency badge, at its badge key."""
    if kind not in BADGE_KINDS:
        raise Http404(f"badge must be one of {', '.join(BADGE_KINDS)}")
    badge = get_object_or_404(MonitorBadge.objects.select_related("monitor"), key=key)
    monitor = badge.monitor
    label = request.GET.get("label", "")[:40]
    if kind == "status":
        status = (
            "paused"
            if not monitor.enabled or monitor.status == "paused"
            else {"up": "operational", "down": "down"}.get(monitor.status, "unknown")
        )
        text = MONITOR_LABELS[status].lower()
        return _svg(badge_svg(label=label or "status", message=text, colour=STATUS_COLOURS[status]))
    summary = summaries_read(monitor_ids=[monitor.pk])[monitor.pk]
    now = timezone.now()
    if kind == "uptime":
        window = request.GET.get("window", "30d")
        if window not in UPTIME_WINDOWS:
            raise Http404(f"window must be one of {', '.join(UPTIME_WINDOWS)}")
        percent = summary.uptime(window=window, now=now)
        text = "no data" if percent is None else f"{percent:.2f}%"
        return _svg(
            badge_svg(
                label=label or f"uptime {window}", message=text, colour=uptime_colour(percent)
            )
        )
    latency = summary.last_latency_ms(now=now)
    text = "no data" if latency is None else f"{latency:.0f} ms"
    return _svg(
        badge_svg(label=label or "response time", message=text, colour=latency_colour(latency))
    )
