"""Writes to alerting configuration: notification channels, alert rules and
maintenance windows. Every writer outside the operators' admin (the API, importers,
configuration files) goes through these, so each refuses what the models' ``clean()``
refuses, with the same messages keyed by field, and saves nothing when it refuses.

Ownership across objects is checked here, not by the caller: a rule alerts only
through channels of its monitor's project, and a maintenance window covers only its
project's monitors.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction

from alerting.models import AlertRule, MaintenanceWindow, NotificationChannel
from monitors.models import Monitor
from monitors.services import tags_get_or_create


@transaction.atomic
def channel_create(*, owner: User, **fields: Any) -> NotificationChannel:
    """Validate and save a new channel (``name``, ``kind``, ``config``); raises
    ValidationError and saves nothing if bad."""
    channel = NotificationChannel(owner=owner, **fields)
    channel.full_clean()
    channel.save()
    return channel


@transaction.atomic
def channel_update(*, channel: NotificationChannel, **fields: Any) -> NotificationChannel:
    """Validate and save changes; ``config``, when given, replaces the stored one whole.
    On ValidationError the stored row is untouched."""
    for name, value in fields.items():
        setattr(channel, name, value)
    channel.full_clean()
    channel.save()
    return channel


@transaction.atomic
def alert_rule_create(
    *, monitor: Monitor, channels: Iterable[NotificationChannel] = (), **fields: Any
) -> AlertRule:
    """Validate and save a new rule of ``monitor`` alerting through ``channels``."""
    rule = AlertRule(monitor=monitor, **fields)
    return _alert_rule_save(rule=rule, channels=list(channels))


@transaction.atomic
def alert_rule_update(
    *, rule: AlertRule, channels: Iterable[NotificationChannel] | None = None, **fields: Any
) -> AlertRule:
    """Validate and save changes; ``channels``, when given, replace the rule's."""
    for name, value in fields.items():
        setattr(rule, name, value)
    wanted = list(rule.channels.all()) if channels is None else list(channels)
    return _alert_rule_save(rule=rule, channels=wanted)


def _alert_rule_save(*, rule: AlertRule, channels: list[NotificationChannel]) -> AlertRule:
    foreign = [c.pk for c in channels if c.project_id != rule.monitor.project_id]
    if foreign:
        raise ValidationError(
            {"channels": f"Channel {foreign[0]} is not in the monitor's project."}
        )
    rule.full_clean()
    rule.save()
    rule.channels.set(channels)
    return rule


@transaction.atomic
def maintenance_window_create(
    *,
    owner: User,
    monitors: Iterable[Monitor] = (),
    tags: Iterable[str] = (),
    **fields: Any,
) -> MaintenanceWindow:
    """Validate and save a new window over ``monitors`` and the owner's monitors with
    ``tags`` (tag names, created as needed)."""
    window = MaintenanceWindow(owner=owner, **fields)
    return _maintenance_window_save(window=window, monitors=list(monitors), tags=tags)


@transaction.atomic
def maintenance_window_update(
    *,
    window: MaintenanceWindow,
    monitors: Iterable[Monitor] | None = None,
    tags: Iterable[str] | None = None,
    **fields: Any,
) -> MaintenanceWindow:
    """Validate and save changes; ``monitors`` and ``tags``, when given, replace the
    window's."""
    for name, value in fields.items():
        setattr(window, name, value)
    wanted = list(window.monitors.all()) if monitors is None else list(monitors)
    return _maintenance_window_save(window=window, monitors=wanted, tags=tags)


def _maintenance_window_save(
    *, window: MaintenanceWindow, monitors: list[Monitor], tags: Iterable[str] | None
) -> MaintenanceWindow:
    window.full_clean()  # also gives a new window its default project
    foreign = [m.pk for m in monitors if m.project_id != window.project_id]
    if foreign:
        raise ValidationError({"monitors": f"Monitor {foreign[0]} is not in the window's project."})
    try:
        tag_rows = None if tags is None else tags_get_or_create(names=tags)
    except ValidationError as exc:
        raise ValidationError({"tags": exc.messages}) from exc
    window.save()
    window.monitors.set(monitors)
    if tag_rows is not None:
        window.tags.set(tag_rows)
    return window
