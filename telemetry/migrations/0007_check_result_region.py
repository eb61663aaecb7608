"""check_result gains the region of each result, in its primary key (see the SQL)."""

from __future__ import annotations

from pathlib import Path

from django.db import migrations

SQL = Path(__file__).resolve().parent / "sql"


def _read(name: str) -> str:
    return (SQL / f"{name}.sql").read_text(encoding="utf-8")


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0006_monitor_rollup_summary")]

    operations = [
        migrations.RunSQL(
            _read("0007_check_result_region"),
            reverse_sql=_read("0007_check_result_region_reverse"),
        )
    ]
