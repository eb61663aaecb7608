"""Partition maintenance of the raw and rollup tables: create ahead, drop expired.

Every partitioned table starts with a single ``pmax`` (VALUES LESS THAN MAXVALUE)
partition. Future periods are cut out of it with REORGANIZE PARTITION (instant
while ``pmax`` is empty, which it is as long as maintenance runs ahead of time), and
periods older than their retention are removed with DROP PARTITION: a file removal,
not a DELETE of millions of rows. Only the oldest partitions are ever dropped, so the
ranges stay contiguous and no retained row changes partition.

Runs from migration 0002, the periodic task ``telemetry.maintenance.partitions`` and
``manage.py partitions``. Two runs at once are safe: each holds a MySQL named lock
(GET_LOCK, released by the server if the process dies) and re-reads the layout from
information_schema after taking it, so the second one finds nothing left to do.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connections

from core.db import named_lock

log = logging.getLogger(__name__)

MAXVALUE_PARTITION = "pmax"


@dataclass(frozen=True)
class PartitionedTable:
    """A table partitioned BY RANGE COLUMNS on a date/datetime column."""

    name: str
    column: str
    period: str  # "day" (p<YYYYMMDD>) or "month" (p<YYYYMM>)
    retention_setting: str

    @property
    def retention_days(self) -> int:
        return int(getattr(settings, self.retention_setting))

    def period_start(self, day: dt.date) -> dt.date:
        return day if self.period == "day" else day.replace(day=1)

    def next_period(self, start: dt.date) -> dt.date:
        if self.period == "day":
            return start + dt.timedelta(days=1)
        return (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)

    def partition_name(self, start: dt.date) -> str:
        return start.strftime("p%Y%m%d" if self.period == "day" else "p%Y%m")

    def parse_name(self, name: str) -> dt.date | None:
        fmt = "p%Y%m%d" if self.period == "day" else "p%Y%m"
        try:
            return dt.datetime.strptime(name, fmt).date()
        except ValueError:
            return None


PARTITIONED_TABLES: tuple[PartitionedTable, ...] = (
    PartitionedTable("check_result", "scheduled_at", "day", "TELEMETRY_RETENTION_DAYS"),
    PartitionedTable(
        "check_rollup_hourly", "hour_start", "month", "TELEMETRY_HOURLY_RETENTION_DAYS"
    ),
    PartitionedTable("check_rollup_daily", "day", "month", "TELEMETRY_DAILY_RETENTION_DAYS"),
    PartitionedTable("heartbeat_ping", "received_at", "day", "HEARTBEAT_PING_RETENTION_DAYS"),
)


@dataclass(frozen=True)
class Partition:
    name: str
    start: dt.date | None  # None for pmax and for names this module did not make
    rows: int  # information_schema's estimate


@dataclass
class PartitionPlan:
    table: PartitionedTable
    create: list[dt.date] = field(default_factory=list)
    drop: list[str] = field(default_factory=list)

    def describe(self) -> str:
        if not self.create and not self.drop:
            return f"{self.table.name}: up to date"
        parts = []
        if self.create:
            names = [self.table.partition_name(d) for d in self.create]
            parts.append(f"create {len(names)} ({names[0]}..{names[-1]})")
        if self.drop:
            parts.append(f"drop {len(self.drop)} ({self.drop[0]}..{self.drop[-1]})")
        return f"{self.table.name}: " + ", ".join(parts)


def partitions_read(*, table: PartitionedTable, using: str = "default") -> list[Partition]:
    """The table's partitions in range order, from information_schema."""
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT PARTITION_NAME, TABLE_ROWS FROM information_schema.PARTITIONS "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s "
            "ORDER BY PARTITION_ORDINAL_POSITION",
            [table.name],
        )
        rows = cursor.fetchall()
    return [Partition(name, table.parse_name(name), int(n or 0)) for name, n in rows if name]


def partition_plan(
    *, table: PartitionedTable, existing: list[Partition], today: dt.date, ahead_days: int
) -> PartitionPlan:
    """What to create and drop so that the table holds its retention up to today and
    ``ahead_days`` beyond (pure: the layout and the day are given)."""
    plan = PartitionPlan(table)
    oldest_kept = table.period_start(today - dt.timedelta(days=table.retention_days))
    dated = [p for p in existing if p.start is not None]
    plan.drop = [p.name for p in dated if p.start is not None and p.start < oldest_kept]
    kept = [p.start for p in dated if p.start is not None and p.start >= oldest_kept]
    start = table.next_period(max(kept)) if kept else oldest_kept
    last = table.period_start(today + dt.timedelta(days=ahead_days))
    while start <= last:
        plan.create.append(start)
        start = table.next_period(start)
    return plan


def partitions_apply(
    *,
    today: dt.date | None = None,
    using: str = "default",
    report: Callable[[str], None] = log.info,
    tables: tuple[PartitionedTable, ...] = PARTITIONED_TABLES,
) -> list[PartitionPlan] | None:
    """Create missing future partitions and drop expired ones on every partitioned
    table. Returns the plans carried out, or None if another run holds the lock."""
    today = today or dt.datetime.now(dt.UTC).date()
    with named_lock("telemetry.partitions", using=using) as taken:
        if not taken:
            report("partitions: another maintenance run holds the lock; nothing done")
            return None
        plans = []
        with connections[using].cursor() as cursor:
            for table in tables:
                plan = partition_plan(
                    table=table,
                    existing=partitions_read(table=table, using=using),
                    today=today,
                    ahead_days=settings.TELEMETRY_PARTITIONS_AHEAD_DAYS,
                )
                _carry_out(cursor, plan)
                report(plan.describe())
                plans.append(plan)
        return plans


def _carry_out(cursor: object, plan: PartitionPlan) -> None:
    table = plan.table
    execute: Callable[[str], object] = cursor.execute  # type: ignore[attr-defined]
    if plan.drop:
        execute(f"ALTER TABLE {table.name} DROP PARTITION {', '.join(plan.drop)}")
    if plan.create:
        # Cut the new periods out of pmax; while pmax is empty no row moves.
        new = ", ".join(
            f"PARTITION {table.partition_name(start)} VALUES LESS THAN "
            f"('{table.next_period(start).isoformat()}')"
            for start in plan.create
        )
        execute(
            f"ALTER TABLE {table.name} REORGANIZE PARTITION {MAXVALUE_PARTITION} INTO "
            f"({new}, PARTITION {MAXVALUE_PARTITION} VALUES LESS THAN (MAXVALUE))"
        )
