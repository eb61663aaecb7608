"""The 'failures out of recent checks' rule (its two settings and the recent outcomes it
counts) and why an incident ended. Existing monitors get the defaults (3 of the last 5);
existing incidents that ended were recoveries."""

import django.core.validators
from django.db import migrations, models


def ended_incidents_recovered(apps, schema_editor):  # type: ignore[no-untyped-def]
    incident = apps.get_model("monitors", "Incident")
    incident.objects.using(schema_editor.connection.alias).filter(
        ended_at__isnull=False, end_reason=""
    ).update(end_reason="recovered")


class Migration(migrations.Migration):
    dependencies = [("monitors", "0005_incident_moves_here_alert_rules_leave")]

    operations = [
        migrations.AddField(
            model_name="monitor",
            name="confirm_window",
            field=models.PositiveSmallIntegerField(
                default=5,
                help_text="How many recent checks the 'failures out of recent checks' rule looks at.",
                validators=[
                    django.core.validators.MinValueValidator(2),
                    django.core.validators.MaxValueValidator(20),
                ],
            ),
        ),
        migrations.AddField(
            model_name="monitor",
            name="confirm_window_failures",
            field=models.PositiveSmallIntegerField(
                default=3,
                help_text="Failed checks among the recent ones before the monitor is down.",
                validators=[
                    django.core.validators.MinValueValidator(1),
                    django.core.validators.MaxValueValidator(20),
                ],
            ),
        ),
        migrations.AddField(
            model_name="monitor",
            name="recent_failures",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="incident",
            name="end_reason",
            field=models.CharField(
                blank=True,
                choices=[("recovered", "recovered"), ("paused", "monitor paused")],
                default="",
                max_length=10,
            ),
        ),
        migrations.RunPython(ended_incidents_recovered, migrations.RunPython.noop),
    ]
