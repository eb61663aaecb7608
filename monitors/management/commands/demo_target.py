from __future__ import annotations

import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from monitors.demo import DEMO_TARGET_HOST, DEMO_TARGET_PORT, demo_target_serve


class Command(BaseCommand):
    help = "Serve the demo target (ok, slow, flaky and broken pages) on loopback."

    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=DEMO_TARGET_PORT)

    def handle(self, *args: Any, **options: Any) -> None:
        server = demo_target_serve(host=DEMO_TARGET_HOST, port=options["port"])
        self.stdout.write(f"Demo target on http://{DEMO_TARGET_HOST}:{options['port']}/")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
        finally:
            server.shutdown()
