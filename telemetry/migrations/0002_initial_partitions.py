"""Daily (and monthly) partitions from the start of retention to a week ahead.

Relative to the day ``migrate`` runs, so it cannot be static SQL; the maintenance
task keeps the layout moving afterwards with the same code.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations


def create_partitions(apps: Any, schema_editor: Any) -> None:
    from telemetry.partitions import PARTITIONED_TABLES, partitions_apply

    # The tables of 0001 only: later migrations partition the tables they create.
    tables = tuple(t for t in PARTITIONED_TABLES if t.name in CREATED_BY_0001)
    partitions_apply(using=schema_editor.connection.alias, report=lambda line: None, tables=tables)


CREATED_BY_0001 = ("check_result", "check_rollup_hourly", "check_rollup_daily")


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0001_initial")]

    # Reversing 0001 drops the tables, partitions and all.
    operations = [migrations.RunPython(create_partitions, migrations.RunPython.noop)]
