"""Conversions both readers need."""

from __future__ import annotations

import math
import re

from monitors import validators as v


def tag_name(text: str) -> str:
    """A tag (a slug of at most 50 characters) from another tool's label."""
    slug = re.sub(r"[^a-z0-9_-]+", "-", text.strip().lower()).strip("-")
    return slug[:50] or "tag"


def interval_within(seconds: float) -> tuple[int, str | None]:
    """The interval in our bounds, and a note when it had to move."""
    wanted = math.ceil(seconds)
    bounded = min(max(wanted, v.MIN_INTERVAL_SECONDS), v.MAX_INTERVAL_SECONDS)
    low, high = v.MIN_INTERVAL_SECONDS, v.MAX_INTERVAL_SECONDS
    note = f"interval {wanted} s is outside {low}-{high} s; set to {bounded} s"
    return bounded, None if bounded == wanted else note


def timeout_within(seconds: float, interval: int) -> int:
    """A timeout our monitors accept: 1 to 60 s and shorter than the interval."""
    return int(min(max(round(seconds), v.MIN_TIMEOUT_SECONDS), v.MAX_TIMEOUT_SECONDS, interval - 1))
