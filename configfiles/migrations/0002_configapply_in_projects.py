"""Each configuration apply belongs to a project: its owner's personal project."""

from __future__ import annotations

import django.db.models.deletion
from django.db import migrations, models

from projects.migrations._moving import into_personal_projects


class Migration(migrations.Migration):
    dependencies = [
        ("configfiles", "0001_initial"),
        ("projects", "0002_personal_projects"),
    ]

    operations = [
        migrations.AddField(
            model_name="configapply",
            name="project",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="%(app_label)s_%(class)s_set",
                to="projects.project",
            ),
        ),
        migrations.RunPython(
            into_personal_projects("configfiles", "configapply"), migrations.RunPython.noop
        ),
        migrations.AlterField(
            model_name="configapply",
            name="project",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="%(app_label)s_%(class)s_set",
                to="projects.project",
            ),
        ),
    ]
