from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from rest_framework.authtoken.models import Token
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

if TYPE_CHECKING:  # rest_framework.views imports the throttle settings: no cycle at run time
    from rest_framework.views import APIView


class TokenRateThrottle(SimpleRateThrottle):
    """One budget per API token (a user's scripts with two tokens get two budgets),
    per user for browser sessions and per address for anonymous requests.

    The rate is read from settings on every request rather than once at import, so
    ``SENTINEL_API_RATE`` (and tests overriding it) take effect.
    """

    scope = "api"

    def get_rate(self) -> str:
        return str(settings.SENTINEL_API_RATE)

    def get_cache_key(self, request: Request, view: APIView) -> str:
        if isinstance(request.auth, Token):
            ident = f"token:{request.auth.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"addr:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}
