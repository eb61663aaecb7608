"""``manage.py summaries_rebuild``: recompute every monitor's rollup summary from the
rollups (after upgrading to the release that added it, or after writing rollups by
hand)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand
from django.db import connection

from telemetry.summary import DAYS, summaries_rebuild


class Command(BaseCommand):
    help = "Recompute the per-monitor rollup summaries (status pages, overview) from the rollups."

    def handle(self, *args: Any, **options: Any) -> None:
        first_day = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=DAYS - 1)
        with connection.cursor() as cursor:
            # check_rollup_daily_pk (monitor_id, day): a loose scan of the key.
            cursor.execute(
                "SELECT DISTINCT monitor_id FROM check_rollup_daily WHERE day >= %s", [first_day]
            )
            ids = [int(row[0]) for row in cursor.fetchall()]
        written = summaries_rebuild(monitor_ids=ids)
        self.stdout.write(f"Rebuilt {written} monitor summaries.")
