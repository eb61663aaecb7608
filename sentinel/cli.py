"""``manage.py``'s entry point: Django's command line, with one-line errors for the
failures an operator meets first (a service not running, a setting mistyped). A
command stopped by a service that cannot be reached counts an outage of it
(``sentinel_service_outages_total``), as every process that logs one does."""

from __future__ import annotations

import sys

from django.core.exceptions import ImproperlyConfigured

from core.reachability import outage_count, service_error_line, unreachable_service

EXIT_SERVICE_DOWN = 3
EXIT_BAD_SETTINGS = 2


def main(argv: list[str]) -> int:
    try:
        from django.core.management import execute_from_command_line

        execute_from_command_line(argv)
    except ImproperlyConfigured as exc:
        print(f"Configuration error: {exc}", file=sys.stderr)
        return EXIT_BAD_SETTINGS
    except Exception as exc:
        line = service_error_line(exc)
        if line is None:
            raise
        print(line, file=sys.stderr)
        service = unreachable_service(exc)
        if service is not None:
            outage_count(service)
        return EXIT_SERVICE_DOWN
    return 0
