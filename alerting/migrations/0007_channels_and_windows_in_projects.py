"""Maintenance windows and notification channels belong to a project: their owner's
personal project (the owner stays, as who created them)."""

from __future__ import annotations

import django.db.models.deletion
from django.db import migrations, models

from projects.migrations._moving import into_personal_projects


class Migration(migrations.Migration):
    dependencies = [
        ("alerting", "0006_notification_resends_in_doubt"),
        ("projects", "0002_personal_projects"),
    ]

    operations = [
        migrations.AddField(
            model_name="maintenancewindow",
            name="project",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="%(app_label)s_%(class)s_set",
                to="projects.project",
            ),
        ),
        migrations.AddField(
            model_name="notificationchannel",
            name="project",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="%(app_label)s_%(class)s_set",
                to="projects.project",
            ),
        ),
        migrations.RunPython(
            into_personal_projects("alerting", "maintenancewindow", "notificationchannel"),
            migrations.RunPython.noop,
        ),
        migrations.AlterField(
            model_name="maintenancewindow",
            name="project",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="%(app_label)s_%(class)s_set",
                to="projects.project",
            ),
        ),
        migrations.AlterField(
            model_name="notificationchannel",
            name="project",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="%(app_label)s_%(class)s_set",
                to="projects.project",
            ),
        ),
    ]
