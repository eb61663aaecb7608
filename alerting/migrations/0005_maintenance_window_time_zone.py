"""Maintenance windows get a time zone. Existing rows become UTC (the column's database
default), which is how they always behaved; new ones start with SENTINEL_TIME_ZONE."""

from django.db import migrations, models

import alerting.models


class Migration(migrations.Migration):
    dependencies = [
        ("alerting", "0004_incident_moves_to_monitors"),
    ]

    operations = [
        migrations.AddField(
            model_name="maintenancewindow",
            name="time_zone",
            field=models.CharField(
                db_default="UTC",
                default=alerting.models.site_time_zone,
                help_text="IANA name, e.g. Europe/Berlin or America/New_York. Times are "
                "entered and shown in it, and a weekly window keeps its wall-clock time "
                "across daylight saving changes.",
                max_length=64,
            ),
        ),
        migrations.AlterField(
            model_name="maintenancewindow",
            name="starts_at",
            field=models.DateTimeField(help_text="For a weekly window, the first one."),
        ),
    ]
