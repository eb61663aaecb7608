"""API keys as DRF authentication: ``Authorization: Bearer us_…``.

A request with a key acts as the key's creator (the audit trail names them) limited to
the key's project: ``request.user.api_key`` is the key, which ``visible_to`` and
``may_change`` read. A read-only key is refused on every write (``ProjectRole``).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from projects.models import KEY_MARK, ApiKey
from projects.services import api_key_authenticate

KEYWORD = b"bearer"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer <key>`` with a project's API key. A Bearer value that is
    not one of our keys is left to the other classes; one that is but does not match a
    live key is a 401."""

    def authenticate(self, request: Request) -> tuple[Any, ApiKey] | None:
        parts = authentication.get_authorization_header(request).split()
        if len(parts) != 2 or parts[0].lower() != KEYWORD:
            return None
        secret = parts[1].decode("latin-1")
        if not secret.startswith(KEY_MARK):
            return None
        key = api_key_authenticate(secret)
        if key is None or not key.created_by.is_active:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        user = key.created_by
        user.api_key = key  # type: ignore[attr-defined]
        return user, key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """How the OpenAPI document describes project API keys."""

    target_class = "projects.api.auth.ApiKeyAuthentication"
    name = "projectApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A project's API key (us_…), read-write or read-only.",
        }
