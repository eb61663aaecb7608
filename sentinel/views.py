from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from sentinel.services import service_states


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness of the stack for load balancers and compose: 200 if every service
    answers, 503 otherwise. URLs are left out: this endpoint is public."""
    states = service_states()
    body = {
        "status": "ok" if all(s.ok for s in states) else "unavailable",
        "services": {
            s.service: {"ok": s.ok, **({"error": s.error} if s.error else {})} for s in states
        },
    }
    return JsonResponse(body, status=200 if body["status"] == "ok" else 503)
