from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from monitors.demo import (
    DEMO_TARGET_HOST,
    DEMO_TARGET_PORT,
    demo_admin_ensure,
    demo_monitors_ensure,
)


class Command(BaseCommand):
    help = "Create the admin account (printing its password once) and the demo monitors."

    def handle(self, *args: Any, **options: Any) -> None:
        admin, password = demo_admin_ensure()
        if password:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Admin account created: user 'admin', password '{password}' "
                    "(shown only this once; change it in the admin)."
                )
            )
        else:
            self.stdout.write(
                "Admin account 'admin' exists (its password was printed when it was created; "
                "'python manage.py changepassword admin' sets a new one)."
            )
        base_url = f"http://{DEMO_TARGET_HOST}:{DEMO_TARGET_PORT}"
        created = demo_monitors_ensure(owner=admin, base_url=base_url)
        self.stdout.write(f"Demo monitors: {created} created, pointing at {base_url}.")
