from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from rest_framework.authtoken.models import Token
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from projects.models import ApiKey

if TYPE_CHECKING:  # rest_framework.views imports the throttle settings: no cycle at run time
    from rest_framework.views import APIView


class TokenRateThrottle(SimpleRateThrottle):
    """One budget per API token or project API key (a user's scripts with two
    tokens or keys get two budgets), per user for browser sessions and per address for
    anonymous requests.

    The rate is read from settings on every request rather than once at import, so
    ``SENTINEL_API_RATE`` (and tests overriding it) take effect.
    """

    scope = "api"
    setting = "SENTINEL_API_RATE"

    def get_rate(self) -> str:
        return str(getattr(settings, self.setting))

    def get_cache_key(self, request: Request, view: APIView) -> str:
        if isinstance(request.auth, Token):
            ident = f"token:{request.auth.pk}"
        elif isinstance(request.auth, ApiKey):
            ident = f"key:{request.auth.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"addr:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class CheckNowRateThrottle(TokenRateThrottle):
    """A second, smaller budget for requests that check monitors now (one monitor's
    check-now, a bulk ``check_now``): each makes the probe workers connect to targets
    at once, outside their schedule, so the general rate would let one token turn the
    server into a load generator. ``SENTINEL_API_CHECK_NOW_RATE``, per token or user."""

    scope = "check_now"
    setting = "SENTINEL_API_CHECK_NOW_RATE"

    def allow_request(self, request: Request, view: APIView) -> bool:
        if getattr(view, "action", None) == "bulk":
            data = request.data
            if not isinstance(data, dict) or data.get("action") != "check_now":
                return True  # pause and resume make no checks
        return super().allow_request(request, view)
