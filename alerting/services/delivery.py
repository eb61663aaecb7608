"""Delivery: claim notifications, send them side by side, record every attempt.

A task sends its rows concurrently, one thread each, so a slow or broken channel
delays nobody else; channels known to be unhealthy get tasks of their own, queued
last (``notifications.delivery_batches``). Each attempt is counted by what it led to
(sent, retrying, failed) in Redis, for ``sentinel_notification_attempts_total``.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from functools import lru_cache

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from alerting.channels import DeliveryError, channel_send
from alerting.models import (
    ChannelHealth,
    Notification,
    NotificationAttempt,
    NotificationChannel,
)
from alerting.services.notifications import DELIVERY_BATCH_SIZE, Alert, Event, notification_payload
from core.counters import counters_add

logger = logging.getLogger(__name__)

# How long a batch waits for its sends before recording the ones that finished: the
# fast sends of a batch are recorded while a hanging endpoint is still timing out.
DELIVERY_ROUND_SECONDS = 1.0

Outcome = tuple[Notification, DeliveryError | None]

# Send attempts by what they led to: "sent", "retrying" (failed, tried again later)
# and "failed" (failed for good); core.counters, read by /metrics.
ATTEMPTS_KEY = "sentinel:counters:notification_attempts"
# Sends handed out again after their worker died mid-send (field "in_doubt"): counted
# where it happens, so that the counter never goes down when notification rows are
# deleted with their monitor.
RESENDS_KEY = "sentinel:counters:notification_resends"
ATTEMPT_OUTCOMES = ("sent", "retrying", "failed")


def notifications_deliver(
    *, notification_ids: Sequence[int], final_attempt: bool = False
) -> dict[int, list[int]]:
    """Claim a batch of notifications, send them concurrently and record the outcomes;
    return the ones to retry, as {seconds until the retry: notification ids}.

    The claim is one conditional UPDATE from pending/retrying to sending, tagged with
    a token that says which rows this call won: a task that is redelivered (the broker
    did not see the ack) or duplicated finds its rows sending or sent and skips them,
    so nothing is sent twice while its worker lives. A worker killed mid-send leaves
    its rows ``sending``: after a lease the sweep hands them out again
    (``notifications_in_doubt_resend``), with the same delivery id. Each send's outcome
    is recorded as soon as its round ends, which keeps that window in doubt short.
    """
    now, token = timezone.now(), uuid.uuid4().hex
    claimed = Notification.objects.filter(
        pk__in=list(notification_ids),
        status__in=[Notification.Status.PENDING, Notification.Status.RETRYING],
    ).update(
        status=Notification.Status.SENDING,
        claimed_at=now,
        claim_token=token,
        attempts=F("attempts") + 1,
    )
    if not claimed:
        return {}
    notifications = list(
        Notification.objects.select_related("channel", "channel__health").filter(
            pk__in=list(notification_ids), claim_token=token
        )
    )
    retries: dict[int, list[int]] = defaultdict(list)
    for outcomes in _send_all(notifications):
        for notification_id, countdown in _outcomes_record(
            outcomes, started=now, final_attempt=final_attempt
        ):
            retries[countdown].append(notification_id)
    return dict(retries)


def notification_deliver(*, notification_id: int, final_attempt: bool = False) -> int | None:
    """``notifications_deliver`` for one notification: seconds until a retry, or None."""
    retries = notifications_deliver(notification_ids=[notification_id], final_attempt=final_attempt)
    return next(iter(retries), None)


def _send_one(notification: Notification) -> Outcome:
    try:
        channel_send(
            channel=notification.channel,
            payload=notification.payload,
            delivery_id=str(notification.pk),
        )
    except DeliveryError as exc:
        # An HTTP client's message repeats the URL, which is a credential (a Slack or
        # Apprise URL is its own token): masked before it is stored, logged or shown.
        exc.message = notification.channel.redact(exc.message)
        return notification, exc
    return notification, None


def _send_all(notifications: list[Notification]) -> Iterable[list[Outcome]]:
    """Send each notification in its own thread (the SSRF guard is per thread); yield
    the outcomes in rounds, so that one endpoint timing out delays nobody's record."""
    if len(notifications) == 1:
        yield [_send_one(notifications[0])]
        return
    pool = _send_pool()
    pending = {pool.submit(_send_one, n) for n in notifications}
    while pending:
        done, pending = wait(pending, timeout=DELIVERY_ROUND_SECONDS)
        if done:
            yield [future.result() for future in done]


@lru_cache(maxsize=1)
def _send_pool() -> ThreadPoolExecutor:
    # One per process, made on first use (after the worker forked), threads kept
    # between tasks. A prefork child runs one task at a time and a batch waits for all
    # of its sends, so each notification of a batch gets a thread at once. (A threads
    # pool worker would share it between its tasks: sends would queue, none be lost.)
    return ThreadPoolExecutor(max_workers=DELIVERY_BATCH_SIZE, thread_name_prefix="notify")


def _outcomes_record(
    outcomes: list[Outcome], *, started: dt.datetime, final_attempt: bool
) -> list[tuple[int, int]]:
    """Record one round of sends in a few statements; return (id, countdown) to retry."""
    finished = timezone.now()
    NotificationAttempt.objects.bulk_create(
        [
            NotificationAttempt(
                notification=n,
                number=n.attempts,
                started_at=started,
                finished_at=finished,
                ok=error is None,
                transient=bool(error and error.transient),
                error=error.message if error else "",
            )
            for n, error in outcomes
        ]
    )
    sent = [n for n, error in outcomes if error is None]
    if sent:
        # No transaction on the success path (three more statements on MySQL).
        Notification.objects.filter(pk__in=[n.pk for n in sent]).update(
            status=Notification.Status.SENT, sent_at=finished, error=""
        )
        for channel in {n.channel_id: n.channel for n in sent}.values():
            if _health_needs_update(channel):
                channel_health_record(channel_id=channel.pk, error=None)
    failed = [(n, error) for n, error in outcomes if error is not None]
    retries = _failures_record(failed, final_attempt=final_attempt) if failed else []
    counts = (len(sent), len(retries), len(failed) - len(retries))
    counters_add(key=ATTEMPTS_KEY, amounts=dict(zip(ATTEMPT_OUTCOMES, counts, strict=True)))
    return retries


def _failures_record(
    failed: list[tuple[Notification, DeliveryError]], *, final_attempt: bool
) -> list[tuple[int, int]]:
    by_channel: dict[int, list[DeliveryError]] = defaultdict(list)
    for notification, error in failed:
        by_channel[notification.channel_id].append(error)
    retries: list[tuple[int, int]] = []
    updates: dict[tuple[str, str], list[int]] = defaultdict(list)
    with transaction.atomic():
        unhealthy = {
            channel_id
            for channel_id, errors in by_channel.items()
            if channel_health_record(
                channel_id=channel_id, error=errors[-1].message, failures=len(errors)
            )
        }
        for notification, error in failed:
            final = final_attempt or notification.attempts > settings.SENTINEL_NOTIFY_MAX_RETRIES
            # A channel known to be broken gets one attempt per notification, no
            # retries, so it cannot fill the alerts queue while healthy channels wait.
            retry = error.transient and not final and notification.channel_id not in unhealthy
            status = Notification.Status.RETRYING if retry else Notification.Status.FAILED
            updates[(status, error.message)].append(notification.pk)
            if retry:
                retries.append((notification.pk, retry_countdown(notification.attempts)))
            logger.warning(
                "notification %s to channel %s failed: %s",
                notification.pk,
                notification.channel_id,
                error.message,
            )
        for (new_status, message), ids in updates.items():
            Notification.objects.filter(pk__in=ids).update(status=new_status, error=message)
    return retries


def retry_countdown(attempts: int) -> int:
    """Seconds until the retry of a notification whose attempt number ``attempts``
    failed: 5 s, 15 s, 45 s, ... at most 10 min."""
    return int(min(5 * 3 ** (max(attempts, 1) - 1), 600))


def _health_needs_update(channel: NotificationChannel) -> bool:
    try:
        health = channel.health
    except ChannelHealth.DoesNotExist:
        return False  # never failed
    recent = health.last_success_at and health.last_success_at > timezone.now() - dt.timedelta(
        minutes=1
    )
    return bool(health.consecutive_failures or health.unhealthy_since or not recent)


def channel_health_record(*, channel_id: int, error: str | None, failures: int = 1) -> bool:
    """Count a channel's failures in a row (``failures`` more of them, the last with
    ``error``); return whether it is now unhealthy."""
    now = timezone.now()
    health = ChannelHealth.objects.filter(pk=channel_id)
    if error is None:
        # No row means never failed. A healthy channel's row is rewritten at most once a
        # minute, so that a burst of sends to one channel is not a burst of row writes.
        health.filter(
            Q(consecutive_failures__gt=0)
            | Q(last_success_at__isnull=True)
            | Q(last_success_at__lt=now - dt.timedelta(minutes=1))
        ).update(consecutive_failures=0, unhealthy_since=None, last_success_at=now)
        return False
    ChannelHealth.objects.bulk_create([ChannelHealth(channel_id=channel_id)], ignore_conflicts=True)
    health.update(
        consecutive_failures=F("consecutive_failures") + failures,
        last_error=error[:300],
        last_failure_at=now,
    )
    health.filter(
        consecutive_failures__gte=settings.SENTINEL_CHANNEL_UNHEALTHY_AFTER,
        unhealthy_since__isnull=True,
    ).update(unhealthy_since=now)
    return health.filter(unhealthy_since__isnull=False).exists()


def channel_send_test(*, channel: NotificationChannel) -> Notification:
    """Send a test notification now (admin action, API) and return its record."""
    now = timezone.now()
    key = f"test:{uuid.uuid4().hex}"
    payload = notification_payload(
        alert=Alert(0, Event.TEST, key, now, []),
        monitor=None,
        incident=None,
        text=f"A test notification from {settings.SITE_NAME} to {channel.name}.",
    )
    notification = Notification.objects.create(
        channel=channel, event=Event.TEST, dedup_key=key, payload=payload
    )
    notification_deliver(notification_id=notification.pk, final_attempt=True)
    notification.refresh_from_db()
    return notification
