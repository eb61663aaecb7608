"""The sweep, every minute: reminders while down, the end of flapping, alerts an
incident has none of, sends a killed worker left claimed, and notifications whose
queueing failed (left ``pending``) or whose retry was lost (left ``retrying``).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from alerting.models import (
    AlertRule,
    MonitorAlerting,
    Notification,
)
from alerting.services.delivery import RESENDS_KEY, retry_countdown
from alerting.services.holds import alerts_hold_and_notify
from alerting.services.notifications import (
    Alert,
    Event,
    delivery_batches,
    queue_deliveries,
)
from core.counters import counters_add
from monitors.models import Incident

logger = logging.getLogger(__name__)


def alerts_sweep(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Periodic (every minute): reminders while down, the end of flapping, and sends
    that a killed worker left claimed. Takes ``now`` so that tests and benchmarks can
    run it in simulated time."""
    now = now or timezone.now()
    with transaction.atomic():
        alerts = _reminder_alerts(now) + _settled_alerts(now) + _missed_alerts(now)
        queued = alerts_hold_and_notify(alerts) if alerts else 0
    resent, given_up = notifications_in_doubt_resend(now=now)
    requeued = notifications_pending_requeue(now=now) + notifications_retrying_requeue(now=now)
    return {
        "queued": queued,
        "resent_in_doubt": resent,
        "given_up": given_up,
        "requeued": requeued,
    }


# A pending notification this old was never picked up: its queueing after the commit
# that wrote it failed (RabbitMQ away) or its task was lost. Well past the time a
# healthy alerts worker takes to claim a burst.
PENDING_REQUEUE_AFTER = dt.timedelta(seconds=60)


def notifications_pending_requeue(*, now: dt.datetime) -> int:
    """Queue again the notifications left ``pending`` longer than PENDING_REQUEUE_AFTER;
    returns how many. The outbox's other half: rows commit with the state change that
    called for them, and a delivery is queued after commit; should that queueing fail,
    this sends them within a minute or two of the broker's return. Queueing one twice is
    harmless: delivery claims a row before sending it."""
    ids = list(
        Notification.objects.filter(
            status=Notification.Status.PENDING, created_at__lt=now - PENDING_REQUEUE_AFTER
        ).values_list("pk", "channel_id")[:10_000]
    )
    if ids:
        queue_deliveries(delivery_batches(ids))
        logger.warning("%d notification(s) never queued for delivery: queued now", len(ids))
    return len(ids)


def notifications_retrying_requeue(*, now: dt.datetime) -> int:
    """Queue again the notifications left ``retrying`` well past their retry; returns
    how many.

    A retry is a delivery task queued with a countdown (``retry_countdown``) when its
    attempt failed. If RabbitMQ was away at that moment, or lost the task, the row
    waits ``retrying`` with nothing to send it. Its retry was due at most the attempt's
    send timeout plus the countdown after its claim; PENDING_REQUEUE_AFTER later it is
    queued again. A retry that is merely slow is harmless to queue twice: delivery
    claims the row before sending it."""
    overdue = (
        now - PENDING_REQUEUE_AFTER - dt.timedelta(seconds=settings.SENTINEL_NOTIFY_TIMEOUT_SECONDS)
    )
    # By the shortest countdown here (an index range), then by each row's own.
    candidates = Notification.objects.filter(
        status=Notification.Status.RETRYING,
        claimed_at__lt=overdue - dt.timedelta(seconds=retry_countdown(1)),
    ).values_list("pk", "channel_id", "attempts", "claimed_at")[:10_000]
    ids = [
        (pk, channel_id)
        for pk, channel_id, attempts, claimed in candidates
        if claimed is not None
        and claimed < overdue - dt.timedelta(seconds=retry_countdown(attempts))
    ]
    if ids:
        queue_deliveries(delivery_batches(ids))
        logger.warning("%d notification(s) past their retry with none queued: queued now", len(ids))
    return len(ids)


def notifications_in_doubt_resend(*, now: dt.datetime) -> tuple[int, int]:
    """Hand out again the sends a killed worker left claimed past their lease; returns
    (queued again, given up).

    Delivery is at least once: a send in doubt may have reached the receiver, so it is
    sent again with the same delivery id (``X-Sentinel-Delivery``, the payload's
    ``delivery_id``), by which a receiver drops a repeat; a lost "down" is an outage
    nobody hears about, a repeated one is not. One conditional UPDATE, tagged with a
    token, moves them back to ``retrying``, so two sweeps at once queue each once. A
    notification that has used its attempts (``SENTINEL_NOTIFY_MAX_RETRIES``) fails
    instead, so that a send that kills its worker every time cannot loop for ever.
    """
    lease = dt.timedelta(seconds=2 * settings.SENTINEL_NOTIFY_TIMEOUT_SECONDS + 60)
    stuck = Notification.objects.filter(
        status=Notification.Status.SENDING, claimed_at__lt=now - lease
    )
    given_up = stuck.filter(attempts__gt=settings.SENTINEL_NOTIFY_MAX_RETRIES).update(
        status=Notification.Status.FAILED,
        error="Its worker stopped mid-send on every attempt; whether any reached the "
        "receiver is unknown.",
    )
    token = uuid.uuid4().hex
    resent = stuck.update(
        status=Notification.Status.RETRYING,
        claim_token=token,
        resends_in_doubt=F("resends_in_doubt") + 1,
        error="Its worker stopped mid-send; sent again with the same delivery id.",
    )
    if resent:
        ids = list(
            Notification.objects.filter(
                claim_token=token, status=Notification.Status.RETRYING
            ).values_list("pk", "channel_id")
        )
        transaction.on_commit(partial(queue_deliveries, delivery_batches(ids)))
        transaction.on_commit(partial(counters_add, key=RESENDS_KEY, amounts={"in_doubt": resent}))
        logger.warning("%d notification(s) in doubt after a worker stopped: sent again", resent)
    return resent, given_up


def _missed_alerts(now: dt.datetime) -> list[Alert]:
    """Down/up alerts of recent incidents that have no notification at all.

    Ingest writes an incident's notification rows in the transaction that opens or
    closes it, so this finds only incidents of releases that did it after commit, or
    whose rule was added after the change. The grace period leaves ingest time to do
    it itself; if both do, the unique key keeps one row.
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
    # Rules with somewhere to send: an alert for a rule without channels leaves no
    # notification row, so the missed-alert pass would raise it again every minute (and
    # each time count it as a state change towards flapping).
    for pk, monitor_id in (
        AlertRule.objects.filter(
            monitor_id__in=list(monitor_ids),
            kind=AlertRule.Kind.DOWN,
            enabled=True,
            channels__isnull=False,
        )
        .values_list("pk", "monitor_id")
        .distinct()
    ):
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
