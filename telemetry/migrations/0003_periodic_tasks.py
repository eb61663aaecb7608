"""Beat schedule of the telemetry tasks (django-celery-beat's database scheduler).

Installed by a migration so that a fresh deployment drains and maintains without a
manual step; operators may change the intervals in the admin afterwards (this
migration does not run again).
"""

from __future__ import annotations

from typing import Any

from django.db import migrations

# (name, task, every, period, expire_seconds)
SCHEDULE = (
    # Every few seconds; a run that waited longer than its interval in the queue is
    # dropped (the next one comes anyway), so a backlog of drains cannot pile up.
    ("telemetry: drain the result buffer", "telemetry.ingest.drain", 5, "seconds", 5),
    # Hourly: partitions exist days ahead, so a few missed runs are harmless.
    ("telemetry: partition maintenance", "telemetry.maintenance.partitions", 1, "hours", 3600),
)


def install(apps: Any, schema_editor: Any) -> None:
    interval_model = apps.get_model("django_celery_beat", "IntervalSchedule")
    task_model = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, task, every, period, expire in SCHEDULE:
        interval, _ = interval_model.objects.get_or_create(every=every, period=period)
        task_model.objects.update_or_create(
            name=name,
            defaults={"task": task, "interval": interval, "expire_seconds": expire},
        )


def uninstall(apps: Any, schema_editor: Any) -> None:
    task_model = apps.get_model("django_celery_beat", "PeriodicTask")
    task_model.objects.filter(name__in=[name for name, *_ in SCHEDULE]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("telemetry", "0002_initial_partitions"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(install, uninstall)]
