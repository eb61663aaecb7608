"""The deltas the per-monitor summaries take later than the rollups (telemetry.summary)."""

from __future__ import annotations

from pathlib import Path

from django.db import migrations

SQL = Path(__file__).resolve().parent / "sql"


def _read(name: str) -> str:
    return (SQL / f"{name}.sql").read_text(encoding="utf-8")


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0007_check_result_region")]

    operations = [
        migrations.RunSQL(
            _read("0008_summary_pending"),
            reverse_sql=_read("0008_summary_pending_reverse"),
        )
    ]
