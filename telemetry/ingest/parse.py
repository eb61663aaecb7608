"""Parse taken entries strictly into wire rows; what does not parse becomes a dead
letter with its reason instead of blocking the batch.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import orjson
from django.conf import settings

from core.time import to_epoch_ms
from telemetry.buffer import FIELD, DeadLetter, Entry
from telemetry.pings import PingRow, ping_row_decode
from telemetry.records import WireRow, wire_rows_decode

# A result scheduled further ahead than this is a broken clock, not a check.
MAX_FUTURE_MS = 24 * 3600 * 1000

Parsed = list[tuple[Entry, list[WireRow]]]  # each entry with its valid rows


def entries_parse(
    *, entries: Sequence[Entry], now: dt.datetime | None = None
) -> tuple[Parsed, list[DeadLetter]]:
    """Split entries into valid rows and dead letters (deleted entries are neither):
    an unreadable entry is one dead letter, an invalid row of a readable one another."""
    now_ms = to_epoch_ms(now or dt.datetime.now(dt.UTC))
    oldest_ms = now_ms - settings.TELEMETRY_RETENTION_DAYS * 86_400_000
    parsed: Parsed = []
    dead: list[DeadLetter] = []
    for entry in entries:
        if entry.raw is None:
            continue
        try:
            if not entry.raw:
                raise ValueError(f"entry has no {FIELD.decode()!r} field")
            good, bad = wire_rows_decode(
                entry.raw, oldest_ms=oldest_ms, newest_ms=now_ms + MAX_FUTURE_MS
            )
        except ValueError as exc:
            dead.append(DeadLetter(entry.entry_id, str(exc), entry.raw))
            continue
        dead += [DeadLetter(entry.entry_id, why, orjson.dumps(row)) for row, why in bad]
        if good:
            parsed.append((entry, good))
    return parsed, dead


def entries_pings(*, entries: Sequence[Entry]) -> tuple[list[PingRow], list[DeadLetter]]:
    """The heartbeat pings among ``entries`` (checked rows, ``telemetry.pings``), and a
    dead letter for each ping row that does not parse (its entry's results, if any,
    are still stored: ``entries_parse``)."""
    pings: list[PingRow] = []
    dead: list[DeadLetter] = []
    for entry in entries:
        if entry.ping is None:
            continue
        try:
            pings.append(ping_row_decode(entry.ping))
        except ValueError as exc:
            dead.append(DeadLetter(entry.entry_id, str(exc), entry.ping))
    return pings, dead
