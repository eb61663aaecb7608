"""News that telemetry sends upward: the apps above it (monitors) listen, telemetry
imports none of them."""

from __future__ import annotations

from django.dispatch import Signal

# Sent by ingest (``telemetry.ingest.store``) inside the transaction that stored a
# batch, once its rows and rollup deltas are written and before it commits, with
# ``rows``: the wire rows this transaction inserted, in primary-key order (a replayed
# result is not among them). Receivers write in the same transaction: what they write
# commits with the rows or not at all, and an exception rolls the whole batch back (it
# stays in the buffer and is taken again). Monitors applies the live state here.
results_stored = Signal()

# Sent by ingest in the same transaction, before ``results_stored``, when it inserted
# heartbeat pings, with ``pings``: the batch's checked ping rows (telemetry.pings.PingRow;
# those of deleted monitors left out). Monitors resumes paused heartbeats that pinged
# and moves each heartbeat's deadline here.
pings_stored = Signal()
