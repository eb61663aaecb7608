"""Indexes for the dashboard overview's monitor list (reporting.views.overview).

They live on the monitors table but serve only this read path, so they are created
here in raw SQL rather than in ``Monitor.Meta``: the write side does not pay for
knowing about them, and the overview's sort orders are documented beside the view.
"""

from __future__ import annotations

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("monitors", "0002_confirmation_thresholds")]

    operations = [
        # Overview sorted by name (the default): WHERE owner_id = %s ORDER BY name, id,
        # paged by OFFSET over this covering index (the view selects ids first).
        migrations.RunSQL(
            "CREATE INDEX monitor_owner_name_idx ON monitors_monitor (owner_id, name, id)",
            reverse_sql="DROP INDEX monitor_owner_name_idx ON monitors_monitor",
        ),
        # Overview filtered by status (the counts at the top link there), sorted by name.
        migrations.RunSQL(
            "CREATE INDEX monitor_owner_status_name_idx "
            "ON monitors_monitor (owner_id, status, name, id)",
            reverse_sql="DROP INDEX monitor_owner_status_name_idx ON monitors_monitor",
        ),
    ]
