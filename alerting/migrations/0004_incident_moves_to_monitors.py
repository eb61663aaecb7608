"""The incident has moved to ``monitors`` (its migration 0005); notifications point
there. State only: no table changes."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("alerting", "0003_alert_rules_and_channels_move_here"),
        ("monitors", "0005_incident_moves_here_alert_rules_leave"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="notification",
                    name="incident",
                    field=models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="notifications",
                        to="monitors.incident",
                    ),
                ),
                migrations.DeleteModel(name="Incident"),
            ],
            database_operations=[],
        ),
    ]
