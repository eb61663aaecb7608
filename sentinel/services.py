"""Reachability of the services UptimeSentinel depends on: MySQL, Redis, RabbitMQ.

Used by ``/healthz``, by ``manage.py preflight`` (which ``make run`` calls before
migrating) and by ``manage.py`` itself to turn a connection error into one line
that names the service, the URL tried (without its password) and how to start it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import redis
from django.conf import settings
from django.db import connections
from kombu import Connection

PROBE_TIMEOUT_SECONDS = 2

START_HINTS = {
    "database": "start MariaDB/MySQL (e.g. 'start-stop-daemon --start --background "
    "--exec /usr/sbin/mariadbd' or 'docker compose up -d mysql') or set DATABASE_URL",
    "redis": "start Redis (e.g. 'redis-server --daemonize yes' or "
    "'docker compose up -d redis') or set REDIS_URL",
    "broker": "start RabbitMQ (e.g. 'rabbitmq-server -detached' or "
    "'docker compose up -d rabbitmq') or set CELERY_BROKER_URL",
}
SERVICE_NAMES = {"database": "MySQL", "redis": "Redis", "broker": "RabbitMQ"}


@dataclass(frozen=True)
class ServiceState:
    service: str
    url: str
    ok: bool
    error: str = ""

    def describe(self) -> str:
        """One line for a terminal: what is down, where we looked, how to start it."""
        if self.ok:
            return f"{SERVICE_NAMES[self.service]} at {self.url}: ok"
        return (
            f"{SERVICE_NAMES[self.service]} is unreachable at {self.url} ({self.error}); "
            f"{START_HINTS[self.service]}."
        )


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (user names stay: they help)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username}:***@{host}" if parts.username else f"***@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def short_error(exc: BaseException) -> str:
    """The first line of an exception's message, without driver noise."""
    args: tuple[object, ...] = getattr(exc, "args", ())
    # mysqlclient: (2002, "Can't connect to server on '127.0.0.1' (115)")
    if len(args) == 2 and isinstance(args[0], int):
        text = str(args[1])
    else:
        text = str(exc) or type(exc).__name__
    return text.strip().splitlines()[0][:200] if text.strip() else type(exc).__name__


def database_state(alias: str = "default") -> ServiceState:
    url = redact_url(settings.DATABASE_URL)
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:
        connections[alias].close()
        return ServiceState("database", url, False, short_error(exc))
    return ServiceState("database", url, True)


def redis_state() -> ServiceState:
    url = redact_url(settings.REDIS_URL)
    client = redis.Redis.from_url(
        settings.REDIS_URL,
        socket_connect_timeout=PROBE_TIMEOUT_SECONDS,
        socket_timeout=PROBE_TIMEOUT_SECONDS,
    )
    try:
        client.ping()
    except redis.RedisError as exc:
        return ServiceState("redis", url, False, short_error(exc))
    finally:
        client.close()
    return ServiceState("redis", url, True)


def broker_state() -> ServiceState:
    url = redact_url(settings.CELERY_BROKER_URL)
    try:
        with Connection(settings.CELERY_BROKER_URL, connect_timeout=PROBE_TIMEOUT_SECONDS) as conn:
            conn.ensure_connection(max_retries=1, timeout=PROBE_TIMEOUT_SECONDS)
    except Exception as exc:
        return ServiceState("broker", url, False, short_error(exc))
    return ServiceState("broker", url, True)


STATE_READERS: dict[str, Callable[[], ServiceState]] = {
    "database": database_state,
    "redis": redis_state,
    "broker": broker_state,
}


def service_states() -> list[ServiceState]:
    """The state of every service, database first."""
    return [read() for read in STATE_READERS.values()]
