from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import MySQLdb
import pytest
from django.core.management import call_command
from django.db import connection

from telemetry.partitions import (
    PARTITIONED_TABLES,
    Partition,
    PartitionedTable,
    partition_plan,
    partitions_apply,
    partitions_read,
)

DAILY = PARTITIONED_TABLES[0]
MONTHLY = PARTITIONED_TABLES[1]
TODAY = dt.date(2026, 3, 15)


def layout(table: PartitionedTable, starts: list[dt.date]) -> list[Partition]:
    return [Partition(table.partition_name(s), s, 0) for s in starts] + [Partition("pmax", None, 0)]


def test_a_fresh_table_gets_partitions_for_the_retention_and_days_ahead(settings):
    settings.TELEMETRY_RETENTION_DAYS = 3

    plan = partition_plan(table=DAILY, existing=layout(DAILY, []), today=TODAY, ahead_days=2)

    assert plan.create == [dt.date(2026, 3, d) for d in range(12, 18)]
    assert plan.drop == []


def test_it_creates_only_the_missing_days_and_drops_expired_ones(settings):
    settings.TELEMETRY_RETENTION_DAYS = 3
    existing = layout(DAILY, [dt.date(2026, 3, d) for d in range(9, 16)])

    plan = partition_plan(table=DAILY, existing=existing, today=TODAY, ahead_days=2)

    assert plan.drop == ["p20260309", "p20260310", "p20260311"]
    assert plan.create == [dt.date(2026, 3, 16), dt.date(2026, 3, 17)]


def test_monthly_partitions_cross_the_year(settings):
    settings.TELEMETRY_HOURLY_RETENTION_DAYS = 40
    existing = layout(MONTHLY, [dt.date(2026, 10, 1), dt.date(2026, 11, 1)])

    plan = partition_plan(
        table=MONTHLY, existing=existing, today=dt.date(2026, 12, 28), ahead_days=7
    )

    assert plan.drop == ["p202610"]
    assert plan.create == [dt.date(2026, 12, 1), dt.date(2027, 1, 1)]


SCRATCH = PartitionedTable("test_scratch_result", "scheduled_at", "day", "TELEMETRY_RETENTION_DAYS")


@pytest.fixture
def scratch_table(transactional_db) -> Iterator[PartitionedTable]:
    """A throwaway copy of check_result's shape (DDL commits, hence transactional_db)."""
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {SCRATCH.name}")
        cursor.execute(
            f"CREATE TABLE {SCRATCH.name} (monitor_id BIGINT NOT NULL, "
            "scheduled_at DATETIME(3) NOT NULL, PRIMARY KEY (monitor_id, scheduled_at)) "
            "PARTITION BY RANGE COLUMNS (scheduled_at) "
            "(PARTITION pmax VALUES LESS THAN (MAXVALUE))"
        )
    yield SCRATCH
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {SCRATCH.name}")


def names(table: PartitionedTable) -> list[str]:
    return [p.name for p in partitions_read(table=table)]


def test_apply_creates_ahead_drops_expired_data_and_is_idempotent(scratch_table, settings):
    settings.TELEMETRY_RETENTION_DAYS = 3
    settings.TELEMETRY_PARTITIONS_AHEAD_DAYS = 2
    partitions_apply(today=TODAY, tables=(scratch_table,))
    assert names(scratch_table) == [f"p202603{d}" for d in range(12, 18)] + ["pmax"]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {scratch_table.name} VALUES "
            "(1, '2026-03-12 10:00:00'), (1, '2026-03-13 23:59:59.999'), (1, '2026-03-14 00:00:00')"
        )

    # Two days later: two new days ahead, the two oldest days (and their rows) gone.
    partitions_apply(today=TODAY + dt.timedelta(days=2), tables=(scratch_table,))
    again = partitions_apply(today=TODAY + dt.timedelta(days=2), tables=(scratch_table,))

    assert names(scratch_table) == [f"p202603{d}" for d in range(14, 20)] + ["pmax"]
    assert again is not None and not any(p.create or p.drop for p in again)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT scheduled_at FROM {scratch_table.name}")
        assert cursor.fetchall() == ((dt.datetime(2026, 3, 14),),)


def test_a_second_run_at_the_same_time_does_nothing(scratch_table, settings):
    params = connection.get_connection_params()
    other = MySQLdb.connect(
        **{k: v for k, v in params.items() if k in {"host", "port", "user", "password"}}
    )
    lock = f"{connection.settings_dict['NAME']}.telemetry.partitions"[-64:]
    try:
        other.cursor().execute("SELECT GET_LOCK(%s, 0)", [lock])
        lines: list[str] = []

        assert partitions_apply(today=TODAY, tables=(scratch_table,), report=lines.append) is None

        assert names(scratch_table) == ["pmax"]
        assert lines == ["partitions: another maintenance run holds the lock; nothing done"]
    finally:
        other.close()


@pytest.mark.django_db
def test_the_migrated_tables_hold_retention_and_a_week_ahead(settings, capsys):
    today = dt.datetime.now(dt.UTC).date()
    days = [p.name for p in partitions_read(table=DAILY)]

    assert f"p{today:%Y%m%d}" in days
    assert f"p{today + dt.timedelta(days=settings.TELEMETRY_PARTITIONS_AHEAD_DAYS):%Y%m%d}" in days
    assert days[-1] == "pmax"
    call_command("partitions", "--status")
    out = capsys.readouterr().out
    assert "check_result:" in out and "pending: check_result: up to date" in out
