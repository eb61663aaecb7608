"""What a configuration file holds of each object, and which channel settings are
secrets (never written to a file; referenced by environment variable instead)."""

from __future__ import annotations

import re
from typing import Any

from django.db.models import Field, Model

from alerting.models import AlertRule, MaintenanceWindow, NotificationChannel
from monitors.models import Monitor
from monitors.services import MONITOR_EDITABLE_FIELDS

# A monitor's settings in file order: what is checked first, then how, then when.
MONITOR_FIELDS: tuple[str, ...] = tuple(f for f in MONITOR_EDITABLE_FIELDS if f != "name")
MONITOR_KEYS = frozenset(
    {"name", *MONITOR_FIELDS, "enabled", "tags", "reminder_minutes", "alert_rules"}
)
RULE_FIELDS = ("kind", "threshold", "consecutive_checks", "window_minutes", "enabled")
RULE_KEYS = frozenset({*RULE_FIELDS, "channels"})
CHANNEL_KEYS = frozenset({"name", "kind", "config"})
WINDOW_FIELDS = ("starts_at", "ends_at", "time_zone", "repeat", "repeat_until")
WINDOW_KEYS = frozenset({"name", *WINDOW_FIELDS, "monitors", "tags"})
TOP_KEYS = frozenset({"version", "tags", "channels", "monitors", "maintenance_windows"})

# Channel settings that are credentials: a Slack or Apprise URL carries its token, a
# webhook's secret signs its payloads. The email address is not one.
SECRET_KEYS: dict[str, tuple[str, ...]] = {
    NotificationChannel.Kind.WEBHOOK: ("secret",),
    NotificationChannel.Kind.SLACK: ("url",),
    NotificationChannel.Kind.APPRISE: ("url",),
}


# Monitor headers whose values are credentials (Authorization, Cookie, X-Api-Key,
# X-Auth-Token, ...): exported as references, like a channel's secrets.
SECRET_HEADER = re.compile(r"auth|cookie|token|secret|passw|key", re.IGNORECASE)


def secret_keys(kind: str) -> tuple[str, ...]:
    return SECRET_KEYS.get(kind, ())


def secret_env_name(*parts: str) -> str:
    """The environment variable an export names for a secret, from the object's name
    and the key: ``SENTINEL_SECRET_OPS_SLACK_URL`` for ``url`` of the channel "ops
    slack", ``SENTINEL_SECRET_API_HEADER_X_API_KEY`` for a monitor's header."""
    words = [re.sub(r"[^A-Z0-9]+", "_", p.upper()).strip("_") for p in parts]
    return "SENTINEL_SECRET_" + "_".join(w for w in words if w)


def model_field(model: type[Model], name: str) -> Field[Any, Any]:
    """A concrete field of ``model`` (the names here are all plain columns)."""
    found = model._meta.get_field(name)
    assert isinstance(found, Field), name
    return found


def default(model: type[Model], name: str) -> Any:
    """The value a field takes when a file leaves it out."""
    return model_field(model, name).get_default()


def non_default(model: type[Model], obj: Model, names: tuple[str, ...]) -> dict[str, Any]:
    return {n: getattr(obj, n) for n in names if getattr(obj, n) != default(model, n)}


__all__ = ["AlertRule", "MaintenanceWindow", "Monitor", "NotificationChannel"]

# What follows name, kind and url in an exported monitor.
MONITOR_SETTINGS = tuple(f for f in MONITOR_FIELDS if f not in ("kind", "url"))
