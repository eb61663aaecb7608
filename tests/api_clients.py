"""API clients for the tests: authenticated by a token, and keeping every answer."""

from __future__ import annotations

from typing import Any

from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient


class RecordingClient(APIClient):
    """An API client that keeps every response body, to search them all for secrets."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.bodies: list[bytes] = []

    def request(self, *args: Any, **kwargs: Any) -> Any:
        response = super().request(*args, **kwargs)
        self.bodies.append(response.content)
        return response


def token_client(user: Any) -> RecordingClient:
    """A client signed in with a new API token of ``user`` (one token per user)."""
    client = RecordingClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client
