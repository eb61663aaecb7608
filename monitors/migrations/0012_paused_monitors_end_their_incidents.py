"""Monitors paused while down before pausing ended incidents (0006) still hold an open
incident: end it at the pause (the monitor's last update), with the reason "paused", as
a pause does now. Otherwise the sweep keeps reminding about it, and once the monitor is
resumed its next outage would find the old incident still open and alert nobody."""

import datetime as dt

from django.db import migrations


def paused_incidents_end(apps, schema_editor):  # type: ignore[no-untyped-def]
    incident = apps.get_model("monitors", "Incident")
    db = schema_editor.connection.alias
    stale = (
        incident.objects.using(db)
        .filter(open_monitor_id__isnull=False, monitor__enabled=False)
        .select_related("monitor")
    )
    for row in stale:
        ended = max(row.monitor.updated_at, row.started_at)
        incident.objects.using(db).filter(pk=row.pk).update(
            ended_at=ended,
            open_monitor_id=None,
            end_reason="paused",
            duration_seconds=max(int((ended - row.started_at) / dt.timedelta(seconds=1)), 0),
        )


class Migration(migrations.Migration):
    dependencies = [("monitors", "0011_ping_monitors")]

    operations = [migrations.RunPython(paused_incidents_end, migrations.RunPython.noop)]
