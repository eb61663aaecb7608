"""The per-monitor rollup summary that the fold keeps (telemetry.summary)."""

from __future__ import annotations

from pathlib import Path

from django.db import migrations

SQL = Path(__file__).resolve().parent / "sql"


def _read(name: str) -> str:
    return (SQL / f"{name}.sql").read_text(encoding="utf-8")


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0005_heartbeat_ping")]

    operations = [
        migrations.RunSQL(
            _read("0006_monitor_rollup_summary"),
            reverse_sql=_read("0006_monitor_rollup_summary_reverse"),
        )
    ]
