"""Ingest: drain the Redis buffer into MySQL, one transaction per batch.

A batch goes through four steps, and a crash between any two loses nothing:

1. **take** stream entries holding up to about N results through the stream's
   consumer group (``XREADGROUP``): they stay in this consumer's pending list until
   acknowledged. This consumer's own pending entries come first (a failed attempt,
   or its previous life), then entries a dead consumer left pending longer than
   ``TELEMETRY_INGEST_RECLAIM_SECONDS`` (``XAUTOCLAIM``), then new ones. The group
   hands each entry to one consumer, so ingestors run in parallel without sharing
   a batch.
2. **parse** each entry's wire rows strictly (``telemetry.records``: one typed msgspec
   decode per entry, row by row only for an entry that fails it); a malformed entry
   or row becomes a dead letter (with the reason) instead of blocking the batch. The
   valid rows are sorted by key and rendered as LOAD DATA's file.
3. **store** the batch in ONE MySQL transaction: the rows go into ``check_result``
   by one ``LOAD DATA LOCAL INFILE ... IGNORE`` (or, where the server refuses local
   files, one multi-row ``INSERT IGNORE``); the primary key ``(monitor_id,
   scheduled_at)`` makes a replayed result a no-op. One row of rollup deltas (an
   entry per check actually inserted, folded later) goes into ``check_rollup_pending``.
4. **ack**: dead letters, ``XACK``, ``XDEL`` and the depth counter in one Redis
   ``MULTI``.

If the process dies before step 3 commits, the entries are still pending and are
taken again; if it dies after the commit but before step 4, they are stored again,
which inserts nothing and appends no delta.

The drain and the long-lived loop run the steps as a pipeline: while batch N is
stored and acknowledged (3, 4) on the caller's thread and database connection, a
helper thread takes and parses batch N+1 (1, 2), on the other core while MySQL works
(``core.prefetch``); it starts when batch N's file goes to MySQL, so that the storing
thread's Python before that does not share the GIL with it. Only taking runs ahead:
every batch is still stored in its own transaction, and acknowledged after its
commit, in the order taken. So a crash still loses nothing and stores nothing twice:
a batch taken ahead is pending for this consumer like any taken batch, and the next
run of the consumer takes its own pending entries first (or another consumer
reclaims them). A take ahead skips the consumer's own pending entries (they are
batch N), and a drain or loop that ends normally stores every batch it took.

The deltas reach the hourly and daily rollups through ``telemetry.rollups.rollups_fold``,
which the drain runs when it ends and the long-lived loop runs when the buffer is
empty or every ``TELEMETRY_ROLLUP_FOLD_SECONDS``. Between takes, the helper thread
adds up the deltas of the batches stored so far (``rollups_premerge``), so that the
fold need not.
"""

from __future__ import annotations

from telemetry.ingest.loop import (
    PERIODIC_CONSUMER,
    PERIODIC_LOCK_KEY,
    BatchOutcome,
    ingest_batch,
    ingest_drain,
    ingest_forever,
    ingest_periodic,
)
from telemetry.ingest.parse import entries_parse
from telemetry.ingest.store import (
    COLUMNS,
    StoreOutcome,
    existing_monitors_register,
    monitor_deleted,
    rows_store,
)

__all__ = [
    "COLUMNS",
    "PERIODIC_CONSUMER",
    "PERIODIC_LOCK_KEY",
    "BatchOutcome",
    "StoreOutcome",
    "entries_parse",
    "existing_monitors_register",
    "ingest_batch",
    "ingest_drain",
    "ingest_forever",
    "ingest_periodic",
    "monitor_deleted",
    "rows_store",
]
