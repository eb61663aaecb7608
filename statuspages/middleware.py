"""Serve a status page on its custom domain: a request whose host is a page's domain
gets ``statuspages.domain_urls`` as its URLconf and that page's slug.

Hosts must still pass ``ALLOWED_HOSTS`` (docs/status-pages.md).
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from statuspages.domains import domains


class StatusDomainMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        host = request.get_host().rsplit(":", 1)[0].lower().rstrip(".")
        slug = domains.slug_for(host)
        if slug is not None:
            request.urlconf = "statuspages.domain_urls"  # type: ignore[attr-defined]
            request.status_page_slug = slug  # type: ignore[attr-defined]
        return self.get_response(request)
