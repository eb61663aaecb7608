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
