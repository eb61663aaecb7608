"""Alerting: rules, holds, notifications, delivery and the sweep.

The order of calls for one ingest batch, all in its transaction (``monitors.receivers``)::

    changes = monitors_apply_results(results=results)  # opens/closes incidents
    results_applied.send(...)  # -> alerts_process: rules -> Notification rows

One module per part: ``rules`` (from results to alerts), ``holds`` (flapping and
maintenance), ``notifications`` (rows, payloads, queueing), ``delivery`` (sending
and recording), ``sweep`` (the periodic pass).
"""

from __future__ import annotations

from alerting.services.delivery import (
    ATTEMPT_OUTCOMES,
    ATTEMPTS_KEY,
    DELIVERY_BATCH_SIZE,
    DELIVERY_ROUND_SECONDS,
    RESENDS_KEY,
    channel_health_record,
    channel_send_test,
    notification_deliver,
    notifications_deliver,
)
from alerting.services.notifications import Alert, notification_payload
from alerting.services.rules import alerts_process
from alerting.services.sweep import alerts_sweep

__all__ = [
    "ATTEMPTS_KEY",
    "ATTEMPT_OUTCOMES",
    "DELIVERY_BATCH_SIZE",
    "DELIVERY_ROUND_SECONDS",
    "RESENDS_KEY",
    "Alert",
    "alerts_process",
    "alerts_sweep",
    "channel_health_record",
    "channel_send_test",
    "notification_deliver",
    "notification_payload",
    "notifications_deliver",
]
