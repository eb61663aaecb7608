from __future__ import annotations

import redis
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from core.reachability import service_states, short_error
from monitors.regions import regions_status
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
