"""The API's error answers: DRF's, plus a 409 for a write that collides with a
concurrent one (a unique row inserted meanwhile), which would otherwise be a 500.
Every error body is JSON: ``{"detail": "..."}``, or field messages for a 400
(``reporting.api.schema`` documents them)."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler; an ``IntegrityError`` is a 409 (the write was rolled back)."""
    if isinstance(exc, IntegrityError):
        return Response(
            {
                "detail": "This change collides with another one made at the same time; "
                "nothing was saved. Try again."
            },
            status=status.HTTP_409_CONFLICT,
        )
    return drf_exception_handler(exc, context)
