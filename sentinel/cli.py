"""``manage.py``'s entry point: Django's command line, with one-line errors for the
failures an operator meets first (a service not running, a setting mistyped)."""

from __future__ import annotations

import sys

from django.core.exceptions import ImproperlyConfigured

from core.reachability import service_error_line

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
        return EXIT_SERVICE_DOWN
    return 0
