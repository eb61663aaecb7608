"""Alerting: incidents from state changes, notifications from rules, delivery.

The probe worker's order of calls for one batch of results is::

    buffer_push(results=results)
    changes = monitors_apply_results(results=results)  # opens/closes incidents
    alerts_process(results=results, changes=changes)   # rules -> Notification rows

``alerts_process`` is cheap when nothing fires (one indexed SELECT of the batch's
enabled rules) and never sends anything itself: it inserts one ``Notification``
row per (event, channel), claimed by its unique key, and queues delivery tasks of
up to ``DELIVERY_BATCH_SIZE`` rows after commit. A task sends its rows side by side,
one thread each, so a slow or broken channel delays nobody else; channels known to
be unhealthy get tasks of their own, queued last.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from alerting import latency
from alerting.channels import DeliveryError, channel_send
from alerting.models import (
    AlertRuleState,
    ChannelHealth,
    Incident,
    MaintenanceWindow,
    MonitorAlerting,
    Notification,
    NotificationAttempt,
)
from monitors.models import AlertRule, Monitor, NotificationChannel
from sentinel.db import lock_in_key_order
from telemetry.records import CheckResult

if TYPE_CHECKING:
    from monitors.state import StateChange

logger = logging.getLogger(__name__)

Event = Notification.Event
DOWN, UP = Monitor.Status.DOWN, Monitor.Status.UP
# Rules evaluated on every result of their monitor, with state in AlertRuleState.
STATEFUL_KINDS = (AlertRule.Kind.LATENCY, AlertRule.Kind.LATENCY_P95, AlertRule.Kind.TLS_EXPIRY)


@dataclasses.dataclass
class Alert:
    """Something to tell the channels of ``rule_ids`` about one monitor."""

    monitor_id: int
    event: str
    key: str
    at: dt.datetime
    rule_ids: list[int]
    incident_id: int | None = None
    result: CheckResult | None = None
    details: dict[str, Any] = dataclasses.field(default_factory=dict)
    hold_reason: str = ""


# --- Incidents (inside the state transaction) -------------------------------------


def incidents_apply(
    *, changes: Sequence[StateChange], failed_while_down: dict[int, int]
) -> list[StateChange]:
    """Open an incident for each down change and close it on the up change.

    Must run inside ``monitors_apply_results``' transaction, which holds the
    monitors' row locks: that is why two workers can never both open one. Returns
    the changes with ``incident_id`` filled in. A monitor with several changes in one
    batch is handled in rounds, its first change in the first round, and so on.
    """
    out: list[StateChange] = []
    for round_ in _rounds(changes):
        opened = _incidents_open([c for c in round_ if c.new_status == DOWN])
        closed = _incidents_close([c for c in round_ if c.new_status == UP])
        for change in round_:
            found = opened if change.new_status == DOWN else closed
            out.append(dataclasses.replace(change, incident_id=found.get(change.monitor_id)))
    _incidents_count_failures(failed_while_down)
    return out


def _rounds(changes: Sequence[StateChange]) -> list[list[StateChange]]:
    seen: dict[int, int] = defaultdict(int)
    rounds: list[list[StateChange]] = []
    for change in changes:
        index = seen[change.monitor_id]
        seen[change.monitor_id] += 1
        if index == len(rounds):
            rounds.append([])
        rounds[index].append(change)
    return rounds


def _incidents_open(changes: list[StateChange]) -> dict[int, int]:
    if not changes:
        return {}
    # INSERT IGNORE: a monitor paused while down and resumed keeps its open incident.
    Incident.objects.bulk_create(
        [
            Incident(
                monitor_id=c.monitor_id,
                started_at=c.result.scheduled_at,
                first_failure_kind=c.result.failure.value if c.result.failure else "",
                first_failure_message=c.result.error[:200],
                checks_failed=max(c.consecutive_failures, 1),
                open_monitor_id=c.monitor_id,
            )
            for c in changes
        ],
        ignore_conflicts=True,
    )
    return _open_incident_ids([c.monitor_id for c in changes])


def _open_incident_ids(monitor_ids: Iterable[int]) -> dict[int, int]:
    rows = Incident.objects.filter(open_monitor_id__in=list(monitor_ids)).values_list(
        "open_monitor_id", "pk"
    )
    return {int(monitor_id): pk for monitor_id, pk in rows if monitor_id is not None}


def _incidents_close(changes: list[StateChange]) -> dict[int, int]:
    if not changes:
        return {}
    open_ids = _open_incident_ids(c.monitor_id for c in changes)
    to_close = [c for c in changes if c.monitor_id in open_ids]
    if to_close:
        sql, params = _values_table([(c.monitor_id, c.result.scheduled_at) for c in to_close])
        _execute(
            f"UPDATE {Incident._meta.db_table} i JOIN ({sql}) v "  # noqa: S608 (no user input)
            "ON i.open_monitor_id = v.a SET i.ended_at = v.b, i.open_monitor_id = NULL, "
            "i.duration_seconds = GREATEST(TIMESTAMPDIFF(SECOND, i.started_at, v.b), 0)",
            params,
        )
    return open_ids


def _incidents_count_failures(failed_while_down: dict[int, int]) -> None:
    if not failed_while_down:
        return
    sql, params = _values_table(list(failed_while_down.items()))
    _execute(
        f"UPDATE {Incident._meta.db_table} i JOIN ({sql}) v "  # noqa: S608 (no user input)
        "ON i.open_monitor_id = v.a SET i.checks_failed = i.checks_failed + v.b",
        params,
    )


def _values_table(rows: list[tuple[Any, Any]]) -> tuple[str, list[Any]]:
    """A derived table of (a, b) rows for one UPDATE ... JOIN (no user input in SQL)."""
    sql = " UNION ALL ".join(["SELECT %s AS a, %s AS b"] * len(rows))
    return sql, [value for row in rows for value in row]


def _rows_update(objs: list[Any], fields: list[str]) -> None:
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
    row = "SELECT " + ", ".join(f"%s AS c{i}" for i in range(len(columns) + 1))
    params: list[Any] = []
    for obj in objs:
        params.append(obj.pk)
        params += [f.get_db_prep_save(getattr(obj, f.attname), connection) for f in columns]
    sets = ", ".join(f"t.{qn(f.column)} = v.c{i}" for i, f in enumerate(columns, start=1))
    _execute(
        f"UPDATE {qn(meta.db_table)} t JOIN ({' UNION ALL '.join([row] * len(objs))}) v "  # noqa: S608 (no user input)
        f"ON t.{qn(meta.pk.column)} = v.c0 SET {sets}",
        params,
    )


def _execute(sql: str, params: list[Any]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


# --- Rules: from a probe batch to alerts ------------------------------------------


def alerts_process(*, results: Sequence[CheckResult], changes: Sequence[StateChange]) -> int:
    """Evaluate the batch's rules and queue notifications; returns how many were queued.

    Call it right after ``monitors_apply_results`` with that batch and its changes.
    """
    monitor_ids = {r.monitor_id for r in results}
    changed_ids = {c.monitor_id for c in changes if c.incident_id is not None}
    if not monitor_ids and not changed_ids:
        return 0
    # Down rules only matter for monitors that changed (rare); latency and TLS rules
    # for every result. In the usual batch this reads no rows at all.
    rules = list(
        AlertRule.objects.filter(enabled=True)
        .filter(
            Q(monitor_id__in=monitor_ids, kind__in=STATEFUL_KINDS)
            | Q(monitor_id__in=changed_ids, kind=AlertRule.Kind.DOWN)
        )
        .only("id", "monitor_id", "kind", "threshold", "consecutive_checks", "window_minutes")
    )
    if not rules:
        return 0
    with transaction.atomic():
        alerts = _change_alerts(changes, rules)
        alerts += _rule_alerts(results, rules)
        if not alerts:
            return 0
        monitors = _monitors_for(alerts)
        # Maintenance first: state changes during maintenance do not count as flapping.
        _hold_maintenance(alerts, monitors)
        alerts = _hold_flapping(alerts)
        return _notify(alerts, monitors)


def _change_alerts(changes: Sequence[StateChange], rules: list[AlertRule]) -> list[Alert]:
    down_rules: dict[int, list[int]] = defaultdict(list)
    for rule in rules:
        if rule.kind == AlertRule.Kind.DOWN:
            down_rules[rule.monitor_id].append(rule.pk)
    alerts = []
    for change in changes:
        # An up change that closed nothing is a new monitor's first success: not news.
        if change.incident_id is None or change.monitor_id not in down_rules:
            continue
        event = Event.DOWN if change.new_status == DOWN else Event.UP
        alerts.append(
            Alert(
                change.monitor_id,
                event,
                f"incident:{change.incident_id}:{event}",
                change.result.scheduled_at,
                down_rules[change.monitor_id],
                incident_id=change.incident_id,
                result=change.result,
            )
        )
    return alerts


def _rule_alerts(results: Sequence[CheckResult], rules: list[AlertRule]) -> list[Alert]:
    """Latency streaks and windows and TLS expiry, with their state locked for the batch."""
    stateful = [r for r in rules if r.kind in STATEFUL_KINDS]
    if not stateful:
        return []
    windows = _latency_windows(results, stateful)
    AlertRuleState.objects.bulk_create(
        [AlertRuleState(rule_id=r.pk) for r in stateful], ignore_conflicts=True
    )
    states = {
        s.rule_id: s
        for s in lock_in_key_order(
            AlertRuleState.objects.all(), "rule_id", [r.pk for r in stateful]
        )
    }
    by_monitor: dict[int, list[AlertRule]] = defaultdict(list)
    for rule in stateful:
        by_monitor[rule.monitor_id].append(rule)
    alerts: list[Alert] = []
    for result in sorted(results, key=lambda r: r.scheduled_at):
        for rule in by_monitor.get(result.monitor_id, ()):
            state = states[rule.pk]
            if state.last_result_at and result.scheduled_at <= state.last_result_at:
                continue  # a replayed or late result
            state.last_result_at = result.scheduled_at
            if rule.kind == AlertRule.Kind.LATENCY:
                alerts += _latency_step(rule, state, result)
            elif rule.kind == AlertRule.Kind.LATENCY_P95:
                samples = windows.get(rule.monitor_id, [])
                alerts += _latency_p95_step(rule, state, result, samples)
            else:
                alerts += _tls_step(rule, state, result)
    _rows_update(
        list(states.values()),
        ["latency_streak", "latency_firing", "tls_notified_on", "last_result_at"],
    )
    return alerts


def _latency_step(rule: AlertRule, state: AlertRuleState, result: CheckResult) -> list[Alert]:
    if not result.ok:
        return []  # a failed check is the down rule's business; the streak waits
    epoch = int(result.scheduled_at.timestamp())
    details = {"threshold_ms": rule.threshold, "consecutive_checks": rule.consecutive_checks}
    if result.duration_ms > rule.threshold:
        state.latency_streak += 1
        if state.latency_streak < rule.consecutive_checks or state.latency_firing:
            return []
        state.latency_firing, event, prefix = True, Event.LATENCY, "latency"
    else:
        state.latency_streak = 0
        if not state.latency_firing:
            return []
        state.latency_firing, event, prefix = False, Event.LATENCY_OK, "latency_ok"
    return _rule_alert(rule, event, f"{prefix}:{rule.pk}:{epoch}", result, details)


def _latency_windows(
    results: Sequence[CheckResult], rules: list[AlertRule]
) -> dict[int, list[latency.Sample]]:
    """The recent durations of the monitors with a p95 rule (one Redis round trip)."""
    longest: dict[int, int] = {}
    for rule in rules:
        if rule.kind == AlertRule.Kind.LATENCY_P95:
            seconds = rule.window_minutes * 60
            longest[rule.monitor_id] = max(longest.get(rule.monitor_id, 0), seconds)
    if not longest:
        return {}
    return latency.latency_windows_record(results=results, window_seconds=longest)


def _latency_p95_step(
    rule: AlertRule, state: AlertRuleState, result: CheckResult, samples: list[latency.Sample]
) -> list[Alert]:
    if not result.ok:
        return []  # as for the streak: failures are the down rule's business
    found = latency.window_p95(
        samples, end=result.scheduled_at.timestamp(), seconds=rule.window_minutes * 60
    )
    if found is None:
        return []  # too few checks in the window yet: no verdict either way
    p95, checks = found
    slow = p95 > rule.threshold
    if slow == state.latency_firing:
        return []
    state.latency_firing = slow
    event = Event.LATENCY if slow else Event.LATENCY_OK
    details = {
        "threshold_ms": rule.threshold,
        "window_minutes": rule.window_minutes,
        "p95_ms": p95,
        "checks": checks,
    }
    key = f"{event}:{rule.pk}:{int(result.scheduled_at.timestamp())}"
    return _rule_alert(rule, event, key, result, details)


def _tls_step(rule: AlertRule, state: AlertRuleState, result: CheckResult) -> list[Alert]:
    expires = result.tls_expires_at
    if expires is None or expires - result.scheduled_at > dt.timedelta(days=rule.threshold):
        return []
    day = result.scheduled_at.date()
    if state.tls_notified_on == day:
        return []  # one reminder a day, not one a check
    state.tls_notified_on = day
    days_left = max((expires - result.scheduled_at).days, 0)
    details = {
        "expires_at": expires.isoformat(),
        "days_left": days_left,
        "within_days": rule.threshold,
    }
    return _rule_alert(rule, Event.TLS_EXPIRY, f"tls:{rule.pk}:{day.isoformat()}", result, details)


def _rule_alert(
    rule: AlertRule, event: str, key: str, result: CheckResult, details: dict[str, Any]
) -> list[Alert]:
    """The one alert a rule's step raises about ``result``."""
    return [
        Alert(
            rule.monitor_id,
            event,
            key,
            result.scheduled_at,
            [rule.pk],
            result=result,
            details=details,
        )
    ]


# --- Holds: flapping and maintenance ----------------------------------------------


def _hold_flapping(alerts: list[Alert]) -> list[Alert]:
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
    _rows_update(list(states.values()), ["change_times", "last_change_at", "flapping_since"])
    return alerts + notices


def maintenance_windows_for(*, monitors: Iterable[Monitor]) -> dict[int, list[MaintenanceWindow]]:
    """Each monitor's maintenance windows, directly or through its tags (same owner only:
    tags are global, so another user's window on a tag must not silence your monitor)."""
    owners = {m.pk: m.owner_id for m in monitors}
    if not owners:
        return {}
    pairs = set(
        MaintenanceWindow.monitors.through.objects.filter(monitor_id__in=owners).values_list(
            "monitor_id", "maintenancewindow_id"
        )
    )
    tags: dict[int, set[int]] = defaultdict(set)
    for monitor_id, tag_id in Monitor.tags.through.objects.filter(
        monitor_id__in=owners
    ).values_list("monitor_id", "tag_id"):
        tags[tag_id].add(monitor_id)
    if tags:
        for tag_id, window_id in MaintenanceWindow.tags.through.objects.filter(
            tag_id__in=tags
        ).values_list("tag_id", "maintenancewindow_id"):
            pairs |= {(monitor_id, window_id) for monitor_id in tags[tag_id]}
    windows = MaintenanceWindow.objects.in_bulk({w for _, w in pairs})
    found: dict[int, list[MaintenanceWindow]] = defaultdict(list)
    for monitor_id, window_id in pairs:
        window = windows[window_id]
        if window.owner_id == owners[monitor_id]:
            found[monitor_id].append(window)
    return found


def _hold_maintenance(alerts: list[Alert], monitors: dict[int, Monitor]) -> None:
    candidates = {a.monitor_id for a in alerts if not a.hold_reason and a.monitor_id in monitors}
    windows = maintenance_windows_for(monitors=[monitors[m] for m in candidates])
    for alert in alerts:
        if not alert.hold_reason and any(
            w.is_active(alert.at) for w in windows.get(alert.monitor_id, ())
        ):
            alert.hold_reason = "maintenance"


# --- Notifications: rows, payloads, queueing --------------------------------------


def _monitors_for(alerts: list[Alert]) -> dict[int, Monitor]:
    return Monitor.objects.only("id", "owner_id", "name", "url", "status").in_bulk(
        {a.monitor_id for a in alerts}
    )


def _notify(alerts: list[Alert], monitors: dict[int, Monitor]) -> int:
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
    transaction.on_commit(partial(_queue_deliveries, _delivery_batches(pending)))
    return len(pending)


def _delivery_batches(pending: list[tuple[int, int]]) -> list[list[int]]:
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


def _queue_deliveries(batches: list[list[int]]) -> None:
    from alerting.tasks import deliver_many

    for notification_ids in batches:
        deliver_many.delay(notification_ids)


def notification_payload(
    *, alert: Alert, monitor: Monitor, incident: Incident | None
) -> dict[str, Any]:
    """The JSON body webhooks receive (README.md, "## Alerting"); Slack, email and
    Apprise get its ``title`` and ``text``."""
    result = alert.result
    title, text = _describe(alert, monitor, incident)
    return {
        "version": 1,
        "event": alert.event,
        "key": alert.key,
        "at": alert.at.isoformat(),
        "site": settings.SITE_NAME,
        "title": title,
        "text": text,
        "monitor": {"id": monitor.pk, "name": monitor.name, "url": monitor.url},
        "incident": None
        if incident is None
        else {
            "id": incident.pk,
            "started_at": incident.started_at.isoformat(),
            "ended_at": alert.at.isoformat() if alert.event == Event.UP else None,
            "first_failure_kind": incident.first_failure_kind,
            "first_failure_message": incident.first_failure_message,
            "checks_failed": incident.checks_failed,
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
        Event.DOWN: (f"DOWN: {name}", f"{name} ({monitor.url}) is down: {reason}"),
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
        Event.TLS_EXPIRY: (
            f"TLS certificate expiring: {name}",
            f"The TLS certificate of {name} expires in {d.get('days_left')} days "
            f"({d.get('expires_at')}).",
        ),
        Event.TEST: ("Test notification", f"A test notification from {settings.SITE_NAME}."),
    }
    return texts[Event(alert.event)]


def _duration(delta: dt.timedelta) -> str:
    minutes = max(int(delta.total_seconds() // 60), 0)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"


# --- Delivery ---------------------------------------------------------------------

# Notifications per delivery task. A burst of outages is a burst of these: the claim
# and the bookkeeping are a few statements per batch, not per notification, and the
# sends of a batch run side by side, each in its own thread.
DELIVERY_BATCH_SIZE = 10
# How long a batch waits for its sends before recording the ones that finished: the
# fast sends of a batch are recorded while a hanging endpoint is still timing out.
DELIVERY_ROUND_SECONDS = 1.0

Outcome = tuple[Notification, DeliveryError | None]


def notifications_deliver(
    *, notification_ids: Sequence[int], final_attempt: bool = False
) -> dict[int, list[int]]:
    """Claim a batch of notifications, send them concurrently and record the outcomes;
    return the ones to retry, as {seconds until the retry: notification ids}.

    The claim is one conditional UPDATE from pending/retrying to sending, tagged with
    a token that says which rows this call won: a task that is redelivered (the broker
    did not see the ack) or duplicated finds its rows sending or sent and skips them,
    so nothing is sent twice, per (incident, channel, event) as before. The price is
    "at most once" for a worker killed mid-send: its rows stay ``sending`` and the
    sweep marks them interrupted rather than guess.
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
    return _failures_record(failed, final_attempt=final_attempt) if failed else []


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
                retries.append((notification.pk, min(5 * 3 ** (notification.attempts - 1), 600)))
            logger.warning(
                "notification %s to channel %s failed: %s",
                notification.pk,
                notification.channel_id,
                error.message,
            )
        for (new_status, message), ids in updates.items():
            Notification.objects.filter(pk__in=ids).update(status=new_status, error=message)
    return retries  # 5 s, 15 s, 45 s, ... 10 min


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
    payload = {
        "version": 1,
        "event": Event.TEST.value,
        "key": key,
        "at": now.isoformat(),
        "site": settings.SITE_NAME,
        "title": "Test notification",
        "text": f"A test notification from {settings.SITE_NAME} to {channel.name}.",
        "monitor": None,
        "incident": None,
        "check": None,
        "details": {},
    }
    notification = Notification.objects.create(
        channel=channel, event=Event.TEST, dedup_key=key, payload=payload
    )
    notification_deliver(notification_id=notification.pk, final_attempt=True)
    notification.refresh_from_db()
    return notification


# --- The sweep: reminders, settling, stuck sends ----------------------------------


def alerts_sweep(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Periodic (every minute): reminders while down, the end of flapping, and sends
    that a killed worker left claimed. Takes ``now`` so that tests and benchmarks can
    run it in simulated time."""
    now = now or timezone.now()
    with transaction.atomic():
        alerts = _reminder_alerts(now) + _settled_alerts(now) + _missed_alerts(now)
        monitors = _monitors_for(alerts)
        _hold_maintenance(alerts, monitors)
        alerts = _hold_flapping(alerts)
        queued = _notify(alerts, monitors) if alerts else 0
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
        for event, at in ((Event.DOWN, incident.started_at), (Event.UP, incident.ended_at)):
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
