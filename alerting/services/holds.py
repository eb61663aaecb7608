"""Holds: alerts kept back while a monitor flaps or is in a maintenance window.

A held alert still gets its ``Notification`` row (status ``held``, with the reason),
so that the history shows what was not sent and why.
"""

from __future__ import annotations

from django.conf import settings

from alerting.models import (
    MonitorAlerting,
)
from alerting.selectors import maintenance_windows_for
from alerting.services.notifications import Alert, Event, monitors_for, notify, rows_update
from core.db import lock_in_key_order
from monitors.models import Monitor


def hold_flapping(alerts: list[Alert]) -> list[Alert]:
    """Count state changes per monitor; the one that makes it flap sends one notice."""
    changes = sorted(
        (a for a in alerts if a.event in (Event.DOWN, Event.UP) and not a.hold_reason),
        key=lambda a: a.at,
    )
    if not changes:
        return alerts
    monitor_ids = sorted({a.monitor_id for a in changes})
    MonitorAlerting.objects.bulk_create(
        [MonitorAlerting(monitor_id=m) for m in monitor_ids], ignore_conflicts=True
    )
    states = {
        s.monitor_id: s
        for s in lock_in_key_order(MonitorAlerting.objects.all(), "monitor_id", monitor_ids)
    }
    window = settings.SENTINEL_FLAP_WINDOW_MINUTES * 60
    limit = settings.SENTINEL_FLAP_CHANGES
    notices = []
    for alert in changes:
        state = states[alert.monitor_id]
        now = alert.at.timestamp()
        times = [t for t in state.change_times if t > now - window] + [now]
        state.change_times, state.last_change_at = times[-limit:], alert.at
        if state.flapping_since is None and len(times) >= limit:
            state.flapping_since = alert.at
            details = {
                "changes": len(times),
                "window_minutes": window // 60,
                "settle_minutes": settings.SENTINEL_FLAP_SETTLE_MINUTES,
            }
            notices.append(
                Alert(
                    alert.monitor_id,
                    Event.FLAPPING,
                    f"flapping:{alert.monitor_id}:{int(now)}",
                    alert.at,
                    alert.rule_ids,
                    result=alert.result,
                    details=details,
                )
            )
        if state.flapping_since is not None:
            alert.hold_reason = "flapping"
    rows_update(list(states.values()), ["change_times", "last_change_at", "flapping_since"])
    return alerts + notices


def hold_maintenance(alerts: list[Alert], monitors: dict[int, Monitor]) -> None:
    candidates = {a.monitor_id for a in alerts if not a.hold_reason and a.monitor_id in monitors}
    windows = maintenance_windows_for(monitors=[monitors[m] for m in candidates])
    for alert in alerts:
        if not alert.hold_reason and any(
            w.is_active(alert.at) for w in windows.get(alert.monitor_id, ())
        ):
            alert.hold_reason = "maintenance"


def alerts_hold_and_notify(alerts: list[Alert]) -> int:
    """The end of every alert's way: hold what maintenance or flapping holds, then
    insert the notifications (``notify``); returns how many were queued. Maintenance
    first: state changes during maintenance do not count as flapping."""
    monitors = monitors_for(alerts)
    hold_maintenance(alerts, monitors)
    return notify(hold_flapping(alerts), monitors)
