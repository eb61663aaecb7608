"""A monitor's own cap on how much of a page its keyword is looked for in (it was a
fixed 256 KiB in the probe engine). Existing monitors get the default, 1 MiB."""

import django.core.validators
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("monitors", "0007_connect_to_and_tls_trust"),
    ]

    operations = [
        migrations.AddField(
            model_name="monitor",
            name="max_body_kib",
            field=models.PositiveIntegerField(
                db_default=1024,
                default=1024,
                help_text=(
                    "How much of the page the keyword is looked for in (1 to 10240 KiB). A "
                    "keyword that must appear and is not found in a longer page is reported "
                    "as such."
                ),
                validators=[
                    django.core.validators.MinValueValidator(1),
                    django.core.validators.MaxValueValidator(10240),
                ],
                verbose_name="keyword search limit (KiB)",
            ),
        ),
    ]
