from __future__ import annotations

from collections.abc import Sequence

import pytest
from django.db import connection

from telemetry import rollups
from telemetry.buffer import STREAM_KEY
from telemetry.ingest import StoreOutcome, rows_store
from telemetry.ingest import store as ingest_store
from telemetry.records import CheckResult, payload_decode


@pytest.fixture
def buffer(redis_client, settings, tmp_path, monkeypatch):
    """The result stream in the tests' Redis database, with a private spool; ingest
    starts each test knowing no monitors (the ids of another test's database rows)
    and no rollup deltas added up ahead (another test's)."""
    settings.TELEMETRY_SPOOL_DIR = str(tmp_path / "spool")
    ingest_store._known_monitors.clear()
    monkeypatch.setattr(rollups, "_premerged", rollups._Premerged())
    return redis_client


def buffered_results(client) -> list[CheckResult]:
    """Every result in the stream, in order."""
    return [
        CheckResult.from_wire(row)
        for _, fields in client.xrange(STREAM_KEY)
        for row in payload_decode(fields[b"r"])
    ]


def store(results: Sequence[CheckResult]) -> StoreOutcome:
    """Store results as ingest stores a batch (one transaction)."""
    return rows_store(rows=[result.to_wire() for result in results])


def table_rows(table: str, order: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table} ORDER BY {order}")
        return list(cursor.fetchall())


def snapshot() -> dict[str, list[tuple]]:
    """Every raw, rollup and pending-delta row, to compare before and after a replay."""
    return {
        "check_result": table_rows("check_result", "monitor_id, scheduled_at"),
        "check_rollup_hourly": table_rows("check_rollup_hourly", "monitor_id, hour_start"),
        "check_rollup_daily": table_rows("check_rollup_daily", "monitor_id, day"),
        "check_rollup_pending": table_rows("check_rollup_pending", "id"),
    }


def session_status(name: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SHOW SESSION STATUS LIKE %s", [name])
        return int(cursor.fetchone()[1])
