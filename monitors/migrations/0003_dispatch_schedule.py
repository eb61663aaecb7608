"""Install the per-minute dispatch in Celery Beat's schedule (django-celery-beat).

In a migration, not by hand in the admin, so every installation (``make run``,
Compose's one-shot migrate, CI) has it once ``migrate`` has run.
"""

from django.db import migrations
from django.utils import timezone

TASK_NAME = "monitors: dispatch due checks"


def install(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    every_minute, _ = CrontabSchedule.objects.get_or_create(
        minute="*",
        hour="*",
        day_of_week="*",
        day_of_month="*",
        month_of_year="*",
        timezone="UTC",
    )
    PeriodicTask.objects.update_or_create(
        name=TASK_NAME,
        defaults={
            "task": "monitors.dispatch.due",
            "crontab": every_minute,
            "interval": None,
            "enabled": True,
            # A dispatch that waited past its minute is dropped: the next one
            # covers the same slots (and catches up missed ones) anyway.
            "expire_seconds": 50,
            "description": "Claims the monitors due in the coming minute and sends "
            "their checks to the probe workers.",
        },
    )
    # Tell a running Beat its schedule changed (the models' signals do not fire here).
    PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


def uninstall(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name=TASK_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("monitors", "0002_confirmation_thresholds"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(install, uninstall)]
