"""Notifications: one row per (alert, channel), its payload, and queueing delivery.

Every alert, from a rule, a hold or the sweep, becomes ``Notification`` rows here,
claimed by their unique (channel, key) so that a replayed batch adds nothing, and
the pending ones are queued for delivery after commit. ``notification_payload`` is
the one body every channel gets (webhooks the JSON, the others its title and text).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Callable
from functools import partial
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction

from alerting.models import (
    AlertRule,
    ChannelHealth,
    Notification,
)
from core.db import update_from_values
from core.reachability import BROKER_ERRORS, unreachable_log
from monitors.models import Incident, Monitor
from telemetry.records import CheckResult

# Notifications per delivery task. A burst of outages is a burst of these: the claim
# and the bookkeeping are a few statements per batch, not per notification, and the
# sends of a batch run side by side, each in its own thread.
DELIVERY_BATCH_SIZE = 10

logger = logging.getLogger(__name__)

Event = Notification.Event
DOWN, UP = Monitor.Status.DOWN, Monitor.Status.UP


@dataclasses.dataclass
class Alert:
    """Something to tell the channels of ``rule_ids`` about one monitor (``monitor_id``
    0 for a test notification, which is about none)."""

    monitor_id: int
    event: str
    key: str
    at: dt.datetime
    rule_ids: list[int]
    incident_id: int | None = None
    result: CheckResult | None = None
    details: dict[str, Any] = dataclasses.field(default_factory=dict)
    hold_reason: str = ""


def rows_update(objs: list[Any], fields: list[str]) -> None:
    """``bulk_update`` as one UPDATE ... JOIN of a derived table of the new values.

    Django's ``bulk_update`` builds a CASE per field and row; for a batch of 100
    state changes resolving those expressions took 130 ms of Python, more than the
    rest of ``alerts_process`` (it runs in the probe worker, before the alerts leave).
    """
    if not objs:
        return
    meta = objs[0]._meta
    columns = [meta.get_field(name) for name in fields]
    qn = connection.ops.quote_name
    update_from_values(
        table=qn(meta.db_table),
        columns=[f"c{i}" for i in range(len(columns) + 1)],
        rows=[
            [obj.pk, *(f.get_db_prep_save(getattr(obj, f.attname), connection) for f in columns)]
            for obj in objs
        ],
        on=f"t.{qn(meta.pk.column)} = v.c0",
        assignments=", ".join(f"t.{qn(f.column)} = v.c{i}" for i, f in enumerate(columns, 1)),
    )


def monitors_for(alerts: list[Alert]) -> dict[int, Monitor]:
    return Monitor.objects.only("id", "owner_id", "name", "url", "status").in_bulk(
        {a.monitor_id for a in alerts}
    )


def notify(alerts: list[Alert], monitors: dict[int, Monitor]) -> int:
    """Insert a Notification per (alert, channel) and queue the pending ones on commit."""
    alerts = [a for a in alerts if a.monitor_id in monitors]
    incidents = Incident.objects.in_bulk({a.incident_id for a in alerts if a.incident_id})
    channels_by_rule: dict[int, set[int]] = defaultdict(set)
    for rule_id, channel_id in AlertRule.channels.through.objects.filter(
        alertrule_id__in={r for a in alerts for r in a.rule_ids}
    ).values_list("alertrule_id", "notificationchannel_id"):
        channels_by_rule[rule_id].add(channel_id)
    rows = []
    for alert in alerts:
        payload = notification_payload(
            alert=alert,
            monitor=monitors[alert.monitor_id],
            incident=incidents.get(alert.incident_id) if alert.incident_id else None,
        )
        for channel_id in sorted({c for r in alert.rule_ids for c in channels_by_rule[r]}):
            rows.append(
                Notification(
                    channel_id=channel_id,
                    monitor_id=alert.monitor_id,
                    incident_id=alert.incident_id,
                    event=alert.event,
                    dedup_key=alert.key,
                    status=Notification.Status.HELD if alert.hold_reason else "pending",
                    hold_reason=alert.hold_reason,
                    payload=payload,
                )
            )
    if not rows:
        return 0
    # INSERT IGNORE on (channel, dedup_key): a replayed batch finds its rows there.
    Notification.objects.bulk_create(rows, ignore_conflicts=True)
    pending = list(
        Notification.objects.filter(
            channel_id__in={r.channel_id for r in rows},
            dedup_key__in={r.dedup_key for r in rows},
            status=Notification.Status.PENDING,
        ).values_list("pk", "channel_id")
    )
    transaction.on_commit(partial(queue_deliveries, delivery_batches(pending)))
    return len(pending)


def delivery_batches(pending: list[tuple[int, int]]) -> list[list[int]]:
    """Notification ids in batches of ``DELIVERY_BATCH_SIZE``; those for a channel
    known to be unhealthy each alone and last, so that they wait behind the healthy
    channels' batches and their timeouts hold up no other send."""
    unhealthy = set(
        ChannelHealth.objects.filter(
            pk__in={channel_id for _, channel_id in pending}, unhealthy_since__isnull=False
        ).values_list("pk", flat=True)
    )
    healthy = sorted(pk for pk, channel_id in pending if channel_id not in unhealthy)
    batches = [
        healthy[i : i + DELIVERY_BATCH_SIZE] for i in range(0, len(healthy), DELIVERY_BATCH_SIZE)
    ]
    return batches + [[pk] for pk, channel_id in sorted(pending) if channel_id in unhealthy]


# Queues one delivery task for a batch of notification ids. The tasks sit above these
# services (they call them), so ``alerting.tasks`` registers it when it loads, which
# ``AlertingConfig.ready`` makes sure of.
DeliveryQueue = Callable[[list[int]], object]
_delivery_queue: DeliveryQueue | None = None


def delivery_queue_register(queue: DeliveryQueue) -> None:
    """Set how a batch of notification ids is queued for delivery."""
    global _delivery_queue
    _delivery_queue = queue


def queue_deliveries(batches: list[list[int]]) -> None:
    """Queue a delivery task per batch of notification ids (``delivery_batches``).

    Runs after the commit that wrote the rows (an outbox): if RabbitMQ is away it logs
    one line and returns, the rows stay ``pending`` and the sweep queues them again
    (``notifications_pending_requeue``), so the transaction that wrote them (ingest's)
    never fails for it."""
    if _delivery_queue is None:
        raise ImproperlyConfigured("alerting.tasks is not loaded: nothing queues deliveries")
    try:
        for notification_ids in batches:
            _delivery_queue(notification_ids)
    except BROKER_ERRORS as exc:
        then = "the notifications stay pending; the alerting sweep queues them when it is back"
        unreachable_log(logger, "broker", exc, then)


def notification_payload(
    *, alert: Alert, monitor: Monitor | None, incident: Incident | None, text: str = ""
) -> dict[str, Any]:
    """The JSON body webhooks receive (docs/webhooks.md); Slack, email and Apprise get
    its ``title`` and ``text``. ``monitor`` is None only for a test notification,
    whose ``text`` the caller gives."""
    result = alert.result
    if monitor is None:
        title = "Test notification"
        text = text or f"A test notification from {settings.SITE_NAME}."
    else:
        title, text = _describe(alert, monitor, incident)
    return {
        "version": 1,
        "event": alert.event,
        "key": alert.key,
        "at": alert.at.isoformat(),
        "site": settings.SITE_NAME,
        "title": title,
        "text": text,
        "monitor": None
        if monitor is None
        else {"id": monitor.pk, "name": monitor.name, "url": monitor.url},
        "incident": None
        if incident is None
        else {
            "id": incident.pk,
            "started_at": incident.started_at.isoformat(),
            "ended_at": alert.at.isoformat() if alert.event == Event.UP else None,
            "first_failure_kind": incident.first_failure_kind,
            "first_failure_message": incident.first_failure_message,
            "checks_failed": incident.checks_failed,
            # The probe regions whose checks of the confirming slot failed ([] for a
            # monitor checked from the local region alone).
            "regions": incident.region_names,
        },
        "check": None
        if result is None
        else {
            "scheduled_at": result.scheduled_at.isoformat(),
            "ok": result.ok,
            "duration_ms": result.duration_ms,
            "status_code": result.status_code,
            "failure": result.failure.value if result.failure else None,
            "error": result.error,
        },
        "details": alert.details,
    }


def _seen_from(incident: Incident | None) -> str:
    if incident is None or not incident.regions:
        return ""
    return f" (failed from {incident.regions.replace(',', ', ')})"


def _describe(alert: Alert, monitor: Monitor, incident: Incident | None) -> tuple[str, str]:
    name, d, r = monitor.name, alert.details, alert.result
    since = incident.started_at.strftime("%Y-%m-%d %H:%M UTC") if incident else ""
    if r:
        reason = f"{r.failure.value if r.failure else 'failed'}: {r.error}".rstrip(": ")
    else:
        reason = (
            f"{incident.first_failure_kind}: {incident.first_failure_message}" if incident else ""
        )
    lasted = _duration(alert.at - incident.started_at) if incident else ""
    texts = {
        # A heartbeat has no URL of its own: its kind says what it is.
        Event.DOWN: (
            f"DOWN: {name}",
            f"{name} ({monitor.url or monitor.get_kind_display()}) is down: {reason}"
            f"{_seen_from(incident)}",
        ),
        Event.UP: (f"UP: {name}", f"{name} is up again after {lasted} down."),
        Event.REMINDER: (f"Still DOWN: {name}", f"{name} is still down (since {since}, {lasted})."),
        Event.FLAPPING: (
            f"FLAPPING: {name}",
            f"{name} changed state {d.get('changes')} times in {d.get('window_minutes')} min. "
            f"Alerts are held until it is stable for {d.get('settle_minutes')} min.",
        ),
        Event.SETTLED: (
            f"Stable: {name}",
            f"{name} stopped flapping and is {d.get('status')} now.",
        ),
        Event.LATENCY: (
            f"SLOW: {name}",
            f"{name}'s p95 latency over the last {d.get('window_minutes')} min is "
            f"{d.get('p95_ms')} ms ({d.get('checks')} checks), over {d.get('threshold_ms')} ms."
            if "p95_ms" in d
            else f"{name} took {r.duration_ms if r else '?'} ms, over {d.get('threshold_ms')} ms "
            f"for {d.get('consecutive_checks')} checks in a row.",
        ),
        Event.LATENCY_OK: (f"Fast again: {name}", f"{name} answers within the latency threshold."),
        Event.TLS_EXPIRY: _tls_texts(name, d),
    }
    return texts[Event(alert.event)]


def _tls_texts(name: str, details: dict[str, Any]) -> tuple[str, str]:
    whose = f" ({details['subject']})" if details.get("subject") else ""
    if details.get("expired"):
        return (
            f"TLS certificate expired: {name}",
            f"The TLS certificate chain of {name} expired on {details.get('expires_at')}{whose}.",
        )
    return (
        f"TLS certificate expiring: {name}",
        f"The TLS certificate of {name} expires in {details.get('days_left')} days "
        f"({details.get('expires_at')}){whose}.",
    )


def _duration(delta: dt.timedelta) -> str:
    minutes = max(int(delta.total_seconds() // 60), 0)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"
