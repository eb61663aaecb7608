"""The raw result table and its rollups, in raw SQL (partitioning is beyond the ORM).

The DDL lives in ``sql/`` beside this file, each with a ``_reverse.sql``; reading
the files at import time is fine, querying the database is not.
"""

from __future__ import annotations

from pathlib import Path

from django.db import migrations

SQL = Path(__file__).resolve().parent / "sql"
TABLES = ("0001_check_result", "0001_check_rollup_hourly", "0001_check_rollup_daily")


def _read(name: str) -> str:
    return (SQL / f"{name}.sql").read_text(encoding="utf-8")


class Migration(migrations.Migration):
    initial = True
    dependencies: list[tuple[str, str]] = []

    operations = [
        migrations.RunSQL(_read(name), reverse_sql=_read(f"{name}_reverse")) for name in TABLES
    ]
