"""``manage.py``'s entry point: Django's command line, with one-line errors for the
failures an operator meets first (a service not running, a setting mistyped)."""

from __future__ import annotations

import sys

from django.core.exceptions import ImproperlyConfigured

EXIT_SERVICE_DOWN = 3
EXIT_BAD_SETTINGS = 2

# MySQL client error codes that mean "cannot reach or use the server".
MYSQL_UNREACHABLE = {2002, 2003, 2005, 2006, 2013, 1045, 1049}


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


def service_error_line(exc: BaseException) -> str | None:
    """One line naming the service behind ``exc``, or None if it is not a service error."""
    import django.db
    import kombu.exceptions
    import redis

    from sentinel import services

    if (
        isinstance(exc, django.db.OperationalError)
        and exc.args
        and exc.args[0] in MYSQL_UNREACHABLE
    ):
        url = _setting_url("DATABASE_URL")
        if exc.args[0] == 1049:
            return (
                f"MySQL at {url} has no such database yet; 'python manage.py ensure_database' "
                "(which 'make run' calls) creates it."
            )
        return services.ServiceState("database", url, False, services.short_error(exc)).describe()
    if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
        return services.ServiceState(
            "redis", _setting_url("REDIS_URL"), False, services.short_error(exc)
        ).describe()
    if isinstance(exc, kombu.exceptions.OperationalError):
        return services.ServiceState(
            "broker", _setting_url("CELERY_BROKER_URL"), False, services.short_error(exc)
        ).describe()
    return None


def _setting_url(name: str) -> str:
    from django.conf import settings

    from sentinel.services import redact_url

    return redact_url(getattr(settings, name))
