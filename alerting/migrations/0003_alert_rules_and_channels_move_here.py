"""AlertRule and NotificationChannel move from ``monitors`` to ``alerting``.

State only: the tables keep their names (``monitors_alertrule``,
``monitors_alertrule_channels``, ``monitors_notificationchannel``), so no row is
copied and none can be lost. The content types follow, so that permissions and admin
history keep pointing at the same models.
"""

import django.core.validators
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

MOVED = ("alertrule", "notificationchannel")


def content_types_relabel(old: str, new: str):  # type: ignore[no-untyped-def]
    def relabel(apps, schema_editor):  # type: ignore[no-untyped-def]
        content_type = apps.get_model("contenttypes", "ContentType")
        db = schema_editor.connection.alias
        content_type.objects.using(db).filter(app_label=new, model__in=MOVED).delete()
        content_type.objects.using(db).filter(app_label=old, model__in=MOVED).update(app_label=new)

    return relabel


class Migration(migrations.Migration):
    dependencies = [
        ("alerting", "0002_notification_claim_token"),
        ("monitors", "0004_alert_rule_latency_window"),
        ("contenttypes", "0002_remove_content_type_name"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="NotificationChannel",
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
                        ("name", models.CharField(max_length=200)),
                        (
                            "kind",
                            models.CharField(
                                choices=[
                                    ("email", "Email"),
                                    ("webhook", "Webhook"),
                                    ("slack", "Slack"),
                                    ("apprise", "Apprise URL"),
                                ],
                                max_length=8,
                            ),
                        ),
                        (
                            "config",
                            models.JSONField(
                                default=dict,
                                help_text='email: {"address": …}; webhook: {"url": …, "secret": …}; slack: {"url": …}; apprise: {"url": …}',
                            ),
                        ),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        (
                            "owner",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="channels",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "db_table": "monitors_notificationchannel",
                        "ordering": ["name", "id"],
                    },
                ),
                migrations.CreateModel(
                    name="AlertRule",
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
                            "kind",
                            models.CharField(
                                choices=[
                                    ("down", "Down (consecutive failures)"),
                                    ("latency", "Latency above threshold (ms)"),
                                    (
                                        "latency_p95",
                                        "p95 latency over a window above threshold (ms)",
                                    ),
                                    ("tls_expiry", "TLS certificate expires within (days)"),
                                ],
                                default="down",
                                max_length=12,
                            ),
                        ),
                        (
                            "threshold",
                            models.PositiveIntegerField(
                                default=2,
                                help_text="Failures in a row (down), milliseconds (latency) or days (TLS expiry).",
                                validators=[django.core.validators.MinValueValidator(1)],
                            ),
                        ),
                        (
                            "consecutive_checks",
                            models.PositiveSmallIntegerField(
                                default=1,
                                help_text="For latency: how many checks in a row must be over the threshold.",
                                validators=[
                                    django.core.validators.MinValueValidator(1),
                                    django.core.validators.MaxValueValidator(100),
                                ],
                            ),
                        ),
                        (
                            "window_minutes",
                            models.PositiveSmallIntegerField(
                                db_default=5,
                                default=5,
                                help_text="For p95 latency: the window, in minutes, the 95th percentile is taken over.",
                                validators=[
                                    django.core.validators.MinValueValidator(1),
                                    django.core.validators.MaxValueValidator(60),
                                ],
                            ),
                        ),
                        ("enabled", models.BooleanField(default=True)),
                        (
                            "monitor",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="alert_rules",
                                to="monitors.monitor",
                            ),
                        ),
                        (
                            "channels",
                            models.ManyToManyField(
                                blank=True,
                                db_table="monitors_alertrule_channels",
                                related_name="rules",
                                to="alerting.notificationchannel",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "monitors_alertrule",
                        "ordering": ["monitor_id", "kind", "id"],
                    },
                ),
                migrations.AlterField(
                    model_name="notification",
                    name="channel",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="notifications",
                        to="alerting.notificationchannel",
                    ),
                ),
                migrations.AlterField(
                    model_name="channelhealth",
                    name="channel",
                    field=models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="health",
                        serialize=False,
                        to="alerting.notificationchannel",
                    ),
                ),
                migrations.AlterField(
                    model_name="alertrulestate",
                    name="rule",
                    field=models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="state",
                        serialize=False,
                        to="alerting.alertrule",
                    ),
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(
            content_types_relabel("monitors", "alerting"),
            content_types_relabel("alerting", "monitors"),
        ),
    ]
