"""DNS monitors: the record type to look up, the resolver to ask, the expected values and
how the answer must match them. Existing monitors get the defaults (A, the system's
resolver, no values, "resolves at all"), which a non-DNS monitor ignores."""

from django.db import migrations, models

import monitors.validators


class Migration(migrations.Migration):
    dependencies = [
        ("monitors", "0008_monitor_max_body_kib"),
    ]

    operations = [
        migrations.AddField(
            model_name="monitor",
            name="dns_record_type",
            field=models.CharField(
                choices=[
                    ("A", "A"),
                    ("AAAA", "AAAA"),
                    ("CNAME", "CNAME"),
                    ("MX", "MX"),
                    ("TXT", "TXT"),
                    ("NS", "NS"),
                    ("SOA", "SOA"),
                    ("CAA", "CAA"),
                ],
                db_default="A",
                default="A",
                max_length=5,
                verbose_name="DNS record type",
            ),
        ),
        migrations.AddField(
            model_name="monitor",
            name="dns_resolver",
            field=models.CharField(
                blank=True,
                db_default="",
                default="",
                help_text="IP address and optional port of the resolver to ask, e.g. 9.9.9.9 or 9.9.9.9:5353; empty: the system's resolver.",
                max_length=47,
                validators=[monitors.validators.validate_dns_resolver],
                verbose_name="DNS resolver",
            ),
        ),
        migrations.AddField(
            model_name="monitor",
            name="dns_expected",
            field=models.JSONField(
                blank=True,
                db_default=[],
                default=list,
                help_text='A list, e.g. ["192.0.2.1"] for A, ["10 mail.example.com"] for MX, ["v=spf1 -all"] for TXT.',
                validators=[monitors.validators.validate_dns_expected],
                verbose_name="expected DNS values",
            ),
        ),
        migrations.AddField(
            model_name="monitor",
            name="dns_match",
            field=models.CharField(
                choices=[
                    ("resolves", "resolves at all"),
                    ("any", "any of the expected values"),
                    ("all", "all of the expected values"),
                    ("exact", "exactly the expected values"),
                ],
                db_default="resolves",
                default="resolves",
                max_length=8,
                verbose_name="DNS answer must match",
            ),
        ),
        migrations.AlterField(
            model_name="monitor",
            name="url",
            field=models.CharField(
                help_text="http(s)://… for HTTP; tcp://host:port or tls://host:port for those kinds; dns://name for DNS.",
                max_length=2048,
                verbose_name="URL or target",
            ),
        ),
    ]
