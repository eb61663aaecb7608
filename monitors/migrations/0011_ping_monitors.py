"""Ping monitors: kind 'ping' (target ping://host), echo requests per check, the most
packet loss and the slowest mean round trip that count as up. db_default on the new
columns, for code that predates them."""

import django.core.validators
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("monitors", "0010_json_assertions"),
    ]

    operations = [
        migrations.AddField(
            model_name="monitor",
            name="ping_count",
            field=models.PositiveSmallIntegerField(
                db_default=3,
                default=3,
                help_text="1 to 10 echo requests, 0.2 s apart.",
                validators=[
                    django.core.validators.MinValueValidator(1),
                    django.core.validators.MaxValueValidator(10),
                ],
                verbose_name="echo requests per check",
            ),
        ),
        migrations.AddField(
            model_name="monitor",
            name="ping_max_loss_percent",
            field=models.PositiveSmallIntegerField(
                db_default=50,
                default=50,
                help_text="The check fails when more of the echo requests than this are lost (0 to 99; 0: any loss fails). All of them lost is a timeout.",
                validators=[django.core.validators.MaxValueValidator(99)],
                verbose_name="most packet loss (%)",
            ),
        ),
        migrations.AddField(
            model_name="monitor",
            name="ping_max_rtt_ms",
            field=models.PositiveIntegerField(
                blank=True,
                help_text="The check fails when the mean round-trip time is over this; empty: no limit.",
                null=True,
                validators=[
                    django.core.validators.MinValueValidator(1),
                    django.core.validators.MaxValueValidator(60000),
                ],
                verbose_name="slowest mean round trip (ms)",
            ),
        ),
        migrations.AlterField(
            model_name="monitor",
            name="kind",
            field=models.CharField(
                choices=[
                    ("http", "HTTP(S)"),
                    ("tcp", "TCP port"),
                    ("dns", "DNS"),
                    ("tls", "TLS certificate"),
                    ("ping", "Ping (ICMP)"),
                ],
                default="http",
                max_length=8,
            ),
        ),
        migrations.AlterField(
            model_name="monitor",
            name="url",
            field=models.CharField(
                help_text="http(s)://… for HTTP; tcp://host:port or tls://host:port for those kinds; dns://name for DNS; ping://host for ping.",
                max_length=2048,
                verbose_name="URL or target",
            ),
        ),
    ]
