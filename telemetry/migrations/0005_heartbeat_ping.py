"""Heartbeat pings (signal, run id, body), beside the results they also are."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.db import migrations

SQL = Path(__file__).resolve().parent / "sql"


def _read(name: str) -> str:
    return (SQL / f"{name}.sql").read_text(encoding="utf-8")


def create_partitions(apps: Any, schema_editor: Any) -> None:
    from telemetry.partitions import PARTITIONED_TABLES, partitions_apply

    tables = tuple(t for t in PARTITIONED_TABLES if t.name == "heartbeat_ping")
    partitions_apply(using=schema_editor.connection.alias, report=lambda line: None, tables=tables)


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0004_rollup_pending")]

    operations = [
        migrations.RunSQL(
            _read("0005_heartbeat_ping"), reverse_sql=_read("0005_heartbeat_ping_reverse")
        ),
        migrations.RunPython(create_partitions, migrations.RunPython.noop),
    ]
