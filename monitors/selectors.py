"""Reads of monitor configuration that other layers are handed (see ``apps.py``)."""

from __future__ import annotations

from typing import Any

from monitors.models import Monitor


def monitor_ids_existing(cursor: Any, monitor_ids: set[int]) -> set[int]:
    """The ids in ``monitor_ids`` whose monitor exists, read with ``cursor`` (a DB-API
    cursor of the caller's transaction)."""
    if not monitor_ids:
        return set()
    # Only ints and a model's table name are formatted into the SQL.
    ids = ",".join(str(int(pk)) for pk in monitor_ids)
    cursor.execute(f"SELECT id FROM {Monitor._meta.db_table} WHERE id IN ({ids})")  # noqa: S608
    return {row[0] for row in cursor.fetchall()}
