from __future__ import annotations

import redis
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.views import defaults
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from core.reachability import service_states, short_error
from monitors.regions import regions_status
from projects.roles import Role
from projects.selectors import projects_visible_to, role_of
from sentinel.audit import project_entries
from telemetry.buffer import buffer_stats


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness of the stack for load balancers and compose: 200 if every service
    answers, 503 otherwise. URLs are left out: this endpoint is public.

    ``buffer`` (results waiting in Redis, the oldest one's age, dead letters) is for
    operators and dashboards; it does not change the status: a deep buffer means
    ingest is behind, not that the service is down."""
    states = service_states()
    body: dict[str, object] = {
        "status": "ok" if all(s.ok for s in states) else "unavailable",
        "services": {
            s.service: {"ok": s.ok, **({"error": s.error} if s.error else {})} for s in states
        },
        "buffer": _buffer(),
        # Each probe region's workers; a silent region does not change the status
        # either: its monitors are checked by the others (monitors.regions).
        "regions": {r.name: r.as_dict() for r in regions_status()},
    }
    return JsonResponse(body, status=200 if body["status"] == "ok" else 503)


def _buffer() -> dict[str, object]:
    try:
        return buffer_stats().as_dict()
    except redis.RedisError as exc:
        return {"error": short_error(exc)}


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """A path that matches no URL: JSON under the API, as its other errors are (the
    OpenAPI document says so), Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """A request Django refuses before any view (a form body of more fields than
    ``DATA_UPLOAD_MAX_NUMBER_FIELDS``, a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE``):
    JSON under the API, Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": f"Bad request: {exception}"}, status=400)
    return defaults.bad_request(request, exception)


# The newest entries a project's audit page shows (the admin's log has them all).
AUDIT_PAGE_ENTRIES = 200


@login_required
def project_audit(request: HttpRequest, pk: int) -> HttpResponse:
    """A project's audit trail, for its admins and owners (members: 403; others: 404)."""
    project = get_object_or_404(projects_visible_to(request.user), pk=pk)
    if role_of(request.user, project.pk) not in (Role.OWNER, Role.ADMIN):
        raise PermissionDenied("The audit trail is for the project's admins.")
    entries = project_entries(project_id=project.pk, limit=AUDIT_PAGE_ENTRIES)
    context = {"project": project, "entries": entries, "limit": AUDIT_PAGE_ENTRIES}
    return render(request, "sentinel/project_audit.html", context)
