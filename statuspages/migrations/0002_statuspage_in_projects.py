"""Each status page belongs to a project: its owner's personal project (the owner
stays, as who created it)."""

from __future__ import annotations

import django.db.models.deletion
from django.db import migrations, models

from projects.migrations._moving import into_personal_projects


class Migration(migrations.Migration):
    dependencies = [
        ("projects", "0002_personal_projects"),
        ("statuspages", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="statuspage",
            name="project",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="%(app_label)s_%(class)s_set",
                to="projects.project",
            ),
        ),
        migrations.RunPython(
            into_personal_projects("statuspages", "statuspage"), migrations.RunPython.noop
        ),
        migrations.AlterField(
            model_name="statuspage",
            name="project",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="%(app_label)s_%(class)s_set",
                to="projects.project",
            ),
        ),
    ]
