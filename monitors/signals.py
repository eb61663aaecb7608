"""News that monitors sends upward: the apps above it (alerting) listen, monitors
imports none of them."""

from __future__ import annotations

from django.dispatch import Signal

# Sent by ``monitors.receivers`` once ingest's batch moved the live state (and
# incidents), inside ingest's transaction, with ``results`` (the batch's new
# ``CheckResult`` list) and ``changes`` (its ``StateChange`` list, incidents filled
# in). Receivers write in that transaction (alerting: its notification rows, an outbox
# delivered after commit); an exception rolls the whole batch back, to be taken again.
results_applied = Signal()

# Sent by ``monitors_pause`` and ``monitors_resume`` (``monitors.services``) with
# ``monitor_ids`` (the monitors whose ``enabled`` changed) and ``enabled`` (the new
# value), in the caller's transaction: their bulk UPDATE sends no model signals, and
# the audit trail (``sentinel.audit``) records who paused or resumed what.
monitors_enabled_changed = Signal()
