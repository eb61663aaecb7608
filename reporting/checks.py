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
    if RATE_RE.match(settings.SENTINEL_API_RATE):
        return []
    return [
        Error(
            f"SENTINEL_API_RATE={settings.SENTINEL_API_RATE!r} is not a rate.",
            hint="Use requests/period, e.g. 600/minute or 20/second.",
            id="reporting.E001",
        )
    ]
