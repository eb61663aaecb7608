"""Every existing user gets a personal project with themselves as its owner; each app's
next migration moves that user's objects into it (``projects.migrations._moving``)."""

from __future__ import annotations

from django.db import migrations

from projects.migrations._moving import personal_projects_ensure


class Migration(migrations.Migration):
    dependencies = [
        ("projects", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(personal_projects_ensure, migrations.RunPython.noop)]
