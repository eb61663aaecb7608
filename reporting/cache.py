"""Short-lived Redis caching of a monitor's stats and series answers.

The key carries the monitor's ``last_checked_at``, which the probe workers move on
every check, so a new check starts a new entry; the time to live is also capped at
the monitor's interval, so even a result that reaches MySQL after its live state
shows within one interval.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.cache import cache

from monitors.models import Monitor


def report_cache_key(*, monitor: Monitor, kind: str, key: str) -> str:
    checked = monitor.last_checked_at.timestamp() if monitor.last_checked_at else 0
    return f"report:{kind}:{monitor.pk}:{checked:.3f}:{key}"


def cached_report(*, monitor: Monitor, kind: str, key: str, compute: Callable[[], Any]) -> Any:
    """The cached answer for (monitor, kind, key), computing and storing it if absent."""
    ttl = min(settings.SENTINEL_REPORT_CACHE_SECONDS, monitor.interval_seconds)
    if ttl <= 0:
        return compute()
    cache_key = report_cache_key(monitor=monitor, kind=kind, key=key)
    found = cache.get(cache_key)
    if found is not None:
        return found
    value = compute()
    cache.set(cache_key, value, timeout=ttl)
    return value
