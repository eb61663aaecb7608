"""System checks for the reporting settings."""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, register

RATE_RE = re.compile(r"^\d+/(s|sec|second|m|min|minute|h|hour|d|day)$")


@register()
def check_api_rate(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """A malformed rate would only fail on the first API request; say so at start."""
    return [
        Error(
            f"{name}={getattr(settings, name)!r} is not a rate.",
            hint="Use requests/period, e.g. 600/minute or 20/second.",
            id="reporting.E001",
        )
        for name in ("SENTINEL_API_RATE", "SENTINEL_API_CHECK_NOW_RATE")
        if not RATE_RE.match(getattr(settings, name))
    ]
