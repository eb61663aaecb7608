"""An owner's configuration as a document (``config_export``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from alerting.models import AlertRule, MaintenanceWindow, NotificationChannel
from configfiles.document import FORMAT_VERSION, ConfigFileError, Problem
from configfiles.fields import (
    MONITOR_SETTINGS,
    RULE_FIELDS,
    SECRET_HEADER,
    non_default,
    secret_env_name,
    secret_keys,
)
from configfiles.scope import Scope
from monitors.models import Monitor


def config_export(*, scope: Scope) -> dict[str, Any]:
    """The scope's monitors (with their alert rules), tags, channels and maintenance
    windows as a document: sorted by name, settings at their default left out, secrets
    replaced by ``{"env": NAME}`` references. Raises ``ConfigFileError`` when two objects
    of a kind share a name (names are a file's keys)."""
    monitors = list(
        scope.monitors()
        .select_related("alerting")
        .prefetch_related("tags", "alert_rules__channels")
    )
    channels = list(scope.channels())
    windows = list(scope.windows().prefetch_related("monitors", "tags"))
    _refuse_duplicates(
        [("monitors", monitors), ("channels", channels), ("maintenance_windows", windows)]
    )
    tags = {t.name for m in monitors for t in m.tags.all()}
    tags |= {t.name for w in windows for t in w.tags.all()}
    document: dict[str, Any] = {"version": FORMAT_VERSION, "tags": sorted(tags)}
    document["channels"] = [channel_entry(c) for c in sorted(channels, key=_name)]
    document["monitors"] = [monitor_entry(m) for m in sorted(monitors, key=_name)]
    document["maintenance_windows"] = [window_entry(w) for w in sorted(windows, key=_name)]
    return document


def _name(obj: Any) -> str:
    return str(obj.name)


def _refuse_duplicates(sections: Iterable[tuple[str, list[Any]]]) -> None:
    problems = []
    for section, objects in sections:
        counts = Counter(o.name for o in objects)
        for name, count in sorted(counts.items()):
            if count > 1:
                ids = sorted(o.pk for o in objects if o.name == name)
                problems.append(
                    Problem(
                        None,
                        section,
                        f"{count} are named {name!r} (ids {ids}); names "
                        "are the keys of a configuration file, so rename all but one",
                    )
                )
    if problems:
        raise ConfigFileError(problems)


def monitor_entry(monitor: Monitor) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": monitor.name, "kind": monitor.kind, "url": monitor.url}
    entry |= non_default(Monitor, monitor, MONITOR_SETTINGS)
    if entry.get("headers"):
        entry["headers"] = {
            k: {"env": secret_env_name(monitor.name, "header", k)} if SECRET_HEADER.search(k) else v
            for k, v in entry["headers"].items()
        }
    if not monitor.enabled:
        entry["enabled"] = False
    tags = sorted(t.name for t in monitor.tags.all())
    if tags:
        entry["tags"] = tags
    options = getattr(monitor, "alerting", None)
    if options is not None and options.reminder_minutes:
        entry["reminder_minutes"] = options.reminder_minutes
    rules = sorted(monitor.alert_rules.all(), key=rule_sort_key)
    if rules:
        entry["alert_rules"] = [rule_entry(r) for r in rules]
    return entry


def rule_sort_key(rule: AlertRule) -> tuple[Any, ...]:
    return (rule.kind, rule.threshold, rule.consecutive_checks, rule.window_minutes, rule.pk or 0)


def rule_entry(rule: AlertRule) -> dict[str, Any]:
    entry: dict[str, Any] = {"kind": rule.kind, "threshold": rule.threshold}
    entry |= non_default(AlertRule, rule, RULE_FIELDS[2:])
    channels = sorted(c.name for c in rule.channels.all())
    if channels:
        entry["channels"] = channels
    return entry


def channel_entry(channel: NotificationChannel) -> dict[str, Any]:
    config = dict(channel.config) if isinstance(channel.config, dict) else {}
    secrets = secret_keys(channel.kind)
    shown: dict[str, Any] = {k: config[k] for k in sorted(config) if k not in secrets}
    for key in secrets:
        if key in config:
            shown[key] = {"env": secret_env_name(channel.name, key)}
    return {"name": channel.name, "kind": channel.kind, "config": shown}


def window_entry(window: MaintenanceWindow) -> dict[str, Any]:
    zone = window.zone
    entry: dict[str, Any] = {
        "name": window.name,
        "starts_at": window.starts_at.astimezone(zone).isoformat(),
        "ends_at": window.ends_at.astimezone(zone).isoformat(),
        "time_zone": window.time_zone,
    }
    if window.repeat != MaintenanceWindow.Repeat.NONE:
        entry["repeat"] = window.repeat
    if window.repeat_until is not None:
        entry["repeat_until"] = window.repeat_until.astimezone(zone).isoformat()
    monitors = sorted(m.name for m in window.monitors.all())
    if monitors:
        entry["monitors"] = monitors
    tags = sorted(t.name for t in window.tags.all())
    if tags:
        entry["tags"] = tags
    return entry
