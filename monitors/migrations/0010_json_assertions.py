"""JSON assertions on HTTP checks: conditions on the JSON body, all of which must hold.
Existing monitors get none. The page read limit (max_body_kib) now bounds the JSON body
too, which its label and help say."""

import django.core.validators
from django.db import migrations, models

import monitors.validators


class Migration(migrations.Migration):
    dependencies = [
        ("monitors", "0009_dns_monitors"),
    ]

    operations = [
        migrations.AddField(
            model_name="monitor",
            name="json_assertions",
            field=models.JSONField(
                blank=True,
                db_default=[],
                default=list,
                help_text='A list of conditions on the JSON body, e.g. [{"path": "status.indicator", "op": "==", "value": "none"}]; ops ==, !=, <, >, contains, exists.',
                validators=[monitors.validators.validate_json_assertions],
                verbose_name="JSON assertions",
            ),
        ),
        migrations.AlterField(
            model_name="monitor",
            name="max_body_kib",
            field=models.PositiveIntegerField(
                db_default=1024,
                default=1024,
                help_text="How much of the page the keyword is looked for in, and the largest JSON body assertions read (1 to 10240 KiB). A keyword that must appear and is not found in a longer page, or a longer JSON body, is reported as such.",
                validators=[
                    django.core.validators.MinValueValidator(1),
                    django.core.validators.MaxValueValidator(10240),
                ],
                verbose_name="page read limit (KiB)",
            ),
        ),
    ]
