"""The incident moves here from ``alerting`` (it is opened with the live state, under
the monitor's row lock); AlertRule and NotificationChannel have moved to ``alerting``
(its migration 0003).

State only: ``alerting_incident`` keeps its name, so no row is copied and none can be
lost. The incident's content type follows.
"""

import django.db.models.deletion
from django.db import migrations, models


def content_types_relabel(old: str, new: str):  # type: ignore[no-untyped-def]
    def relabel(apps, schema_editor):  # type: ignore[no-untyped-def]
        content_type = apps.get_model("contenttypes", "ContentType")
        db = schema_editor.connection.alias
        content_type.objects.using(db).filter(app_label=new, model="incident").delete()
        content_type.objects.using(db).filter(app_label=old, model="incident").update(app_label=new)

    return relabel


class Migration(migrations.Migration):
    dependencies = [
        ("monitors", "0004_alert_rule_latency_window"),
        ("alerting", "0003_alert_rules_and_channels_move_here"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="AlertRule"),
                migrations.DeleteModel(name="NotificationChannel"),
                migrations.CreateModel(
                    name="Incident",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        (
                            "started_at",
                            models.DateTimeField(help_text="The check that confirmed the outage."),
                        ),
                        ("ended_at", models.DateTimeField(blank=True, null=True)),
                        ("duration_seconds", models.PositiveIntegerField(blank=True, null=True)),
                        (
                            "first_failure_kind",
                            models.CharField(blank=True, default="", max_length=16),
                        ),
                        (
                            "first_failure_message",
                            models.CharField(blank=True, default="", max_length=200),
                        ),
                        ("checks_failed", models.PositiveIntegerField(default=0)),
                        (
                            "open_monitor_id",
                            models.BigIntegerField(
                                blank=True, editable=False, null=True, unique=True
                            ),
                        ),
                        ("reminders_sent", models.PositiveIntegerField(default=0)),
                        ("last_reminder_at", models.DateTimeField(blank=True, null=True)),
                        (
                            "monitor",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="incidents",
                                to="monitors.monitor",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "alerting_incident",
                        "ordering": ["-started_at", "-id"],
                        "indexes": [
                            models.Index(
                                fields=["monitor", "-started_at"],
                                name="incident_monitor_started_idx",
                            ),
                            models.Index(fields=["started_at"], name="incident_started_idx"),
                            models.Index(fields=["ended_at"], name="incident_ended_idx"),
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(
            content_types_relabel("alerting", "monitors"),
            content_types_relabel("monitors", "alerting"),
        ),
    ]
