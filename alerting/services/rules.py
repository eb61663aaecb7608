"""Rules: from a probe batch's results and state changes to alerts.

``alerts_process`` runs in ingest's transaction right after the batch's live state moved
(it hears of it through ``monitors.signals.results_applied``). It is cheap when nothing
fires (one indexed SELECT of the batch's enabled rules) and never sends anything itself:
its alerts become ``Notification`` rows (an outbox), delivered after commit.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from django.db import connection, transaction

from alerting import latency
from alerting.models import (
    AlertRule,
    AlertRuleState,
)
from alerting.services.holds import alerts_hold_and_notify
from alerting.services.notifications import (
    DOWN,
    Alert,
    Event,
    rows_update,
)
from core.db import lock_in_key_order, sql_ids
from monitors.state import StateChange
from telemetry.records import CheckResult

# Rules evaluated on every result of their monitor, with state in AlertRuleState.
STATEFUL_KINDS = (AlertRule.Kind.LATENCY, AlertRule.Kind.LATENCY_P95, AlertRule.Kind.TLS_EXPIRY)


def alerts_process(*, results: Sequence[CheckResult], changes: Sequence[StateChange]) -> int:
    """Evaluate the batch's rules and queue notifications; returns how many were queued.

    Call it right after ``monitors_apply_results`` with that batch and its changes.
    """
    monitor_ids = {r.monitor_id for r in results}
    changed_ids = {c.monitor_id for c in changes if c.incident_id is not None}
    if not monitor_ids and not changed_ids:
        return 0
    rule_ids = _rules_that_can_fire(monitor_ids, changed_ids)
    if not rule_ids:
        return 0
    rules = list(
        AlertRule.objects.filter(pk__in=rule_ids).only(
            "id", "monitor_id", "kind", "threshold", "consecutive_checks", "window_minutes"
        )
    )
    with transaction.atomic():
        alerts = _change_alerts(changes, rules)
        alerts += _rule_alerts(results, rules)
        if not alerts:
            return 0
        return alerts_hold_and_notify(alerts)


def _rules_that_can_fire(monitor_ids: set[int], changed_ids: set[int]) -> list[int]:
    """Ids of the enabled rules that can fire for this batch: down rules of monitors
    that changed (rare), latency and TLS rules of every monitor of the batch. In the
    usual batch none. Raw SQL with the ids written as integers: an ingest batch has
    up to 10,000 monitors, and the ORM's parameter for each cost more than the query
    (the foreign key's index on monitor_id serves both lookups)."""
    table = AlertRule._meta.db_table
    parts = []
    if monitor_ids:
        kinds = ", ".join(f"'{kind.value}'" for kind in STATEFUL_KINDS)
        parts.append(
            f"SELECT id FROM {table} WHERE enabled AND kind IN ({kinds}) "  # noqa: S608
            f"AND monitor_id IN ({sql_ids(monitor_ids)})"
        )
    if changed_ids:
        parts.append(
            f"SELECT id FROM {table} WHERE enabled AND kind = 'down' "  # noqa: S608
            f"AND monitor_id IN ({sql_ids(changed_ids)})"
        )
    with connection.cursor() as cursor:
        cursor.execute(" UNION ".join(parts))
        return [pk for (pk,) in cursor.fetchall()]


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
    rows_update(
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
        "expired": expires <= result.scheduled_at,
        # The certificate that sets the date, when the probe named it (an intermediate
        # can expire before the server's own).
        "subject": result.tls_expiring_subject,
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
