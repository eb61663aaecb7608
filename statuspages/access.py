"""Who may see a status page: the one rule for its HTML, JSON, feed, logo and badge.

A public page: anyone. A private page: a visitor who brings its access token
(``?token=``), or, for a password page, whose session was unlocked with the current
password (changing the password locks every session out). Anyone else gets a 404, the
same as for a page that does not exist, so a private page's slug reveals nothing.
"""

from __future__ import annotations

import hmac

from django.core.cache import cache
from django.http import Http404, HttpRequest

from statuspages.models import StatusPage

SESSION_KEY = "statuspages-unlocked"


def _marker(page: StatusPage) -> str:
    # A part of the password hash: a new password is a new hash, so old sessions lapse.
    return page.password_hash[-16:]


def page_unlocked(*, request: HttpRequest, page: StatusPage) -> bool:
    """Whether this request may see ``page`` (the rule above)."""
    if page.access == StatusPage.Access.PUBLIC:
        return True
    token = request.GET.get("token", "")
    if token and hmac.compare_digest(token.encode(), page.access_token.encode()):
        return True
    if page.access == StatusPage.Access.PASSWORD and page.password_hash:
        unlocked = request.session.get(SESSION_KEY, {}) if hasattr(request, "session") else {}
        given = unlocked.get(str(page.pk), "")
        return bool(given) and hmac.compare_digest(given, _marker(page))
    return False


UNLOCK_TRIES = 10
UNLOCK_WINDOW_SECONDS = 600


def page_unlock(*, request: HttpRequest, page: StatusPage, password: str) -> bool:
    """Unlock a password page for this session if ``password`` is its password. At
    most ``UNLOCK_TRIES`` wrong passwords per page and client address in
    ``UNLOCK_WINDOW_SECONDS``: after that even the right one fails until the window
    passes, so a password cannot be guessed at speed."""
    key = f"statuspage-unlock:{page.pk}:{request.META.get('REMOTE_ADDR', '')}"
    if page.access != StatusPage.Access.PASSWORD or cache.get(key, 0) >= UNLOCK_TRIES:
        return False
    if not page.password_matches(password):
        cache.add(key, 0, UNLOCK_WINDOW_SECONDS)
        cache.incr(key)
        return False
    unlocked = dict(request.session.get(SESSION_KEY, {}))
    unlocked[str(page.pk)] = _marker(page)
    request.session[SESSION_KEY] = unlocked
    return True


def page_for_visitor(*, request: HttpRequest, slug: str) -> StatusPage:
    """The page at ``slug`` if this request may see it; ``Http404`` otherwise."""
    page = StatusPage.objects.filter(slug=slug).first()
    if page is None or not page_unlocked(request=request, page=page):
        raise Http404("No such status page.")
    return page
