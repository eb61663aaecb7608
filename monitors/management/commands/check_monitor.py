from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from monitors.batch import check_run_now
from monitors.models import Monitor


class Command(BaseCommand):
    help = "Check one monitor now and print the result (nothing is stored)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("monitor_id", type=int)

    def handle(self, *args: Any, **options: Any) -> None:
        monitor = Monitor.objects.filter(pk=options["monitor_id"]).first()
        if monitor is None:
            raise CommandError(f"There is no monitor with id {options['monitor_id']}.")
        result = check_run_now(monitor=monitor)
        verdict = self.style.SUCCESS("UP") if result.ok else self.style.ERROR("DOWN")
        self.stdout.write(f"{monitor.name} ({monitor.url}): {verdict}")
        rows = [
            ("status code", result.status_code),
            ("failure", f"{result.failure.value}: {result.error}" if result.failure else None),
            ("total", f"{result.duration_ms} ms"),
            ("dns", _ms(result.dns_ms)),
            ("connect", _ms(result.connect_ms)),
            ("tls", _ms(result.tls_ms)),
            ("first byte", _ms(result.ttfb_ms)),
            ("certificate expires", result.tls_expires_at),
        ]
        for label, value in rows:
            if value is not None:
                self.stdout.write(f"  {label:<20} {value}")
        if not result.ok:
            raise SystemExit(1)


def _ms(value: int | None) -> str | None:
    return None if value is None else f"{value} ms"
