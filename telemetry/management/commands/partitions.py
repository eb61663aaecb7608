"""``manage.py partitions``: show or fix the partition layout of the telemetry tables."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from telemetry.partitions import (
    PARTITIONED_TABLES,
    partition_plan,
    partitions_apply,
    partitions_read,
)


class Command(BaseCommand):
    help = "Show (--status) or apply (--apply) partition maintenance: create ahead, drop expired."

    def add_arguments(self, parser: CommandParser) -> None:
        action = parser.add_mutually_exclusive_group(required=True)
        action.add_argument("--status", action="store_true")
        action.add_argument("--apply", action="store_true")

    def handle(self, *args: Any, status: bool, apply: bool, **_: Any) -> None:
        if apply:
            if partitions_apply(report=self.stdout.write) is None:
                raise SystemExit(1)
            return
        today = dt.datetime.now(dt.UTC).date()
        for table in PARTITIONED_TABLES:
            existing = partitions_read(table=table)
            dated = [p for p in existing if p.start]
            rows = sum(p.rows for p in existing)
            span = f"{dated[0].name}..{dated[-1].name}" if dated else "none"
            self.stdout.write(
                f"{table.name}: {len(existing)} partitions ({span}, then pmax), "
                f"~{rows} rows, retention {table.retention_days} days"
            )
            plan = partition_plan(
                table=table,
                existing=existing,
                today=today,
                ahead_days=settings.TELEMETRY_PARTITIONS_AHEAD_DAYS,
            )
            self.stdout.write(f"  pending: {plan.describe()}")
