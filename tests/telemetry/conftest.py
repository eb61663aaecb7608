from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import connection

TELEMETRY_TABLES = (
    "check_result",
    "check_rollup_hourly",
    "check_rollup_daily",
    "check_rollup_pending",
)


@pytest.fixture
def telemetry_tables(db) -> Iterator[None]:
    """Empty raw and rollup tables. They are not Django models, so the flush after a
    transactional test leaves them alone; DELETE (not TRUNCATE, which commits) keeps
    the ordinary tests inside their transaction."""

    def empty() -> None:
        with connection.cursor() as cursor:
            for table in TELEMETRY_TABLES:
                cursor.execute(f"DELETE FROM {table}")

    empty()
    yield
    empty()


@pytest.fixture
def buffer(redis_client, settings, tmp_path):
    """The result stream in the tests' Redis database, with a private spool."""
    settings.TELEMETRY_SPOOL_DIR = str(tmp_path / "spool")
    return redis_client


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
