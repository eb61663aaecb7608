"""News that monitors sends upward: the apps above it (alerting) listen, monitors
imports none of them."""

from __future__ import annotations

from django.dispatch import Signal

# Sent by ``monitors.batch.checks_run_batch`` once a probe batch's live state (and
# incidents) committed, with ``results`` (the batch's ``CheckResult`` list) and
# ``changes`` (its ``StateChange`` list, incidents filled in). Receivers run in the
# probe worker, in order, and an exception propagates to the probe task; the
# alerting sweep catches down/up alerts a failed receiver missed within a minute.
results_applied = Signal()
