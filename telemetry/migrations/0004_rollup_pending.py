"""The pending rollup deltas that ingest appends and telemetry.rollups folds."""

from __future__ import annotations

from pathlib import Path

from django.db import migrations

SQL = Path(__file__).resolve().parent / "sql"


def _read(name: str) -> str:
    return (SQL / f"{name}.sql").read_text(encoding="utf-8")


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0003_periodic_tasks")]

    operations = [
        migrations.RunSQL(
            _read("0004_check_rollup_pending"),
            reverse_sql=_read("0004_check_rollup_pending_reverse"),
        )
    ]
