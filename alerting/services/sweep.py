"""The sweep, every minute: reminders while down, the end of flapping, alerts the
probe task died before raising, and sends a killed worker left claimed.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from alerting.models import (
    AlertRule,
    MonitorAlerting,
    Notification,
)
from alerting.services.holds import hold_flapping, hold_maintenance
from alerting.services.notifications import Alert, Event, monitors_for, notify
from monitors.models import Incident


def alerts_sweep(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Periodic (every minute): reminders while down, the end of flapping, and sends
    that a killed worker left claimed. Takes ``now`` so that tests and benchmarks can
    run it in simulated time."""
    now = now or timezone.now()
    with transaction.atomic():
        alerts = _reminder_alerts(now) + _settled_alerts(now) + _missed_alerts(now)
        monitors = monitors_for(alerts)
        hold_maintenance(alerts, monitors)
        alerts = hold_flapping(alerts)
        queued = notify(alerts, monitors) if alerts else 0
    lease = dt.timedelta(seconds=2 * settings.SENTINEL_NOTIFY_TIMEOUT_SECONDS + 60)
    interrupted = Notification.objects.filter(
        status=Notification.Status.SENDING, claimed_at__lt=now - lease
    ).update(
        status=Notification.Status.INTERRUPTED,
        error="The worker stopped mid-send; not resent so that it cannot arrive twice.",
    )
    return {"queued": queued, "interrupted": interrupted}


def _missed_alerts(now: dt.datetime) -> list[Alert]:
    """Down/up alerts of recent incidents that have no notification at all.

    The probe task can die after ``monitors_apply_results`` committed and before
    ``alerts_process`` ran; its redelivery then finds the results applied and no
    change, so only this sweep can notice. The grace period leaves the probe task
    time to do it itself; if both do, the unique key keeps one row.
    """
    since, grace = now - dt.timedelta(minutes=15), now - dt.timedelta(seconds=30)
    incidents = list(
        Incident.objects.filter(
            Q(started_at__range=(since, grace)) | Q(ended_at__range=(since, grace))
        )
    )
    rules = _down_rules(i.monitor_id for i in incidents)
    incidents = [i for i in incidents if rules.get(i.monitor_id)]
    if not incidents:
        return []
    done = set(
        Notification.objects.filter(
            incident__in=incidents, event__in=[Event.DOWN, Event.UP]
        ).values_list("incident_id", "event")
    )
    alerts = []
    for incident in incidents:
        # An incident that ended because its monitor was paused saw no recovery.
        recovered = incident.end_reason != Incident.EndReason.PAUSED
        ended_at = incident.ended_at if recovered else None
        for event, at in ((Event.DOWN, incident.started_at), (Event.UP, ended_at)):
            if at and since <= at <= grace and (incident.pk, event) not in done:
                key = f"incident:{incident.pk}:{event}"
                alerts.append(
                    Alert(
                        incident.monitor_id,
                        event,
                        key,
                        at,
                        rules[incident.monitor_id],
                        incident_id=incident.pk,
                    )
                )
    return alerts


def _down_rules(monitor_ids: Iterable[int]) -> dict[int, list[int]]:
    rules: dict[int, list[int]] = defaultdict(list)
    for pk, monitor_id in AlertRule.objects.filter(
        monitor_id__in=list(monitor_ids), kind=AlertRule.Kind.DOWN, enabled=True
    ).values_list("pk", "monitor_id"):
        rules[monitor_id].append(pk)
    return rules


def _reminder_alerts(now: dt.datetime) -> list[Alert]:
    incidents = list(
        Incident.objects.filter(
            open_monitor_id__isnull=False,
            monitor__alerting__reminder_minutes__gt=0,
            monitor__alerting__flapping_since__isnull=True,
        ).select_related("monitor__alerting")
    )
    rules = _down_rules(i.monitor_id for i in incidents)
    alerts = []
    for incident in incidents:
        every = dt.timedelta(minutes=incident.monitor.alerting.reminder_minutes)
        if (incident.last_reminder_at or incident.started_at) + every > now:
            continue
        number = incident.reminders_sent + 1
        # Conditional UPDATE: two sweeps running at once send each reminder once.
        if Incident.objects.filter(pk=incident.pk, reminders_sent=number - 1).update(
            reminders_sent=number, last_reminder_at=now
        ):
            alerts.append(
                Alert(
                    incident.monitor_id,
                    Event.REMINDER,
                    f"incident:{incident.pk}:reminder:{number}",
                    now,
                    rules.get(incident.monitor_id, []),
                    incident_id=incident.pk,
                )
            )
    return alerts


def _settled_alerts(now: dt.datetime) -> list[Alert]:
    settle = dt.timedelta(minutes=settings.SENTINEL_FLAP_SETTLE_MINUTES)
    states = list(
        MonitorAlerting.objects.filter(
            flapping_since__isnull=False, last_change_at__lte=now - settle
        ).select_related("monitor")
    )
    rules = _down_rules(s.monitor_id for s in states)
    alerts = []
    for state in states:
        since = state.flapping_since
        assert since is not None
        if MonitorAlerting.objects.filter(pk=state.pk, flapping_since=since).update(
            flapping_since=None, change_times=[]
        ):
            alerts.append(
                Alert(
                    state.monitor_id,
                    Event.SETTLED,
                    f"settled:{state.monitor_id}:{int(since.timestamp())}",
                    now,
                    rules.get(state.monitor_id, []),
                    details={"status": state.monitor.status},
                )
            )
    return alerts
