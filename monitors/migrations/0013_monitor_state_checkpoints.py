"""Live-state checkpoints, from which ingest applies a late result in its place
(monitors.state). Existing monitors start with none: their first result after the
upgrade keeps the state they have as the first checkpoint."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("monitors", "0012_paused_monitors_end_their_incidents")]

    operations = [
        migrations.AddField(
            model_name="monitor",
            name="state_checkpoints",
            field=models.JSONField(blank=True, default=list, editable=False),
        ),
    ]
