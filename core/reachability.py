"""Reachability of the services UptimeSentinel depends on: MySQL, Redis, RabbitMQ.

Used by ``/healthz``, by ``manage.py preflight`` (which ``make run`` calls before
migrating), by ``manage.py`` itself, and by every process that meets a service gone
away, so that each says so in one line of one form: the service, the URL tried
(without its password), the error, and what happens next or how to start it.

A process says it once per outage: ``unreachable_log`` logs the line the first time a
component (a logger) meets the service away, and stays quiet (a debug line) on the
attempts after it, with a reminder every ``REMIND_AFTER_SECONDS``; ``reachable_log``
says once that it is back, and the next outage is said again. A retry loop that met
a service away every few seconds used to log a line, or a traceback, each time.

Each time a process says an outage begins (``unreachable_log``, and ``manage.py`` when
it stops on a service) it also counts an outage of that service in Redis, for
``sentinel_service_outages_total`` on ``/metrics``. That count needs Redis: an outage
of Redis itself, or one met while Redis is away too, is counted only if Redis answers
the increment (``core.counters``), which it does not while it is down.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import amqp.exceptions
import django.db
import kombu.exceptions
import MySQLdb
import redis
from django.conf import settings
from django.db import connections
from kombu import Connection

from core.counters import counters_add
from core.db import MYSQL_UNKNOWN_DATABASE, MYSQL_UNREACHABLE
from core.redis import redis_client

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
SERVICE_URL_SETTINGS = {
    "database": "DATABASE_URL",
    "redis": "REDIS_URL",
    "broker": "CELERY_BROKER_URL",
}
# What reaching RabbitMQ raises when it is away: kombu's wrapper of a failed publish or
# connection, py-amqp's connection errors (a broker shutting down closes the connection
# with ConnectionForced) and the socket's own (refused, reset, timed out). Every place
# that catches a broker failure catches these, so none lets one of them through as a
# traceback where another says one line.
BROKER_ERRORS: tuple[type[BaseException], ...] = (
    kombu.exceptions.OperationalError,
    amqp.exceptions.ConnectionError,
    OSError,
)
# Outages each process logged, by service (a field per SERVICE_NAMES key).
OUTAGES_KEY = "sentinel:counters:outages"
# A service still away is said again this often: a reminder, not a line per attempt.
REMIND_AFTER_SECONDS = 600.0

# (logger name, service) -> when its outage was last said (time.monotonic()). Per
# process: each process, and each component in it, says once what it met.
_outages: dict[tuple[str, str], float] = {}
_outages_lock = threading.Lock()


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


def service_url(service: str) -> str:
    """The configured URL of ``service`` ("database", "redis", "broker"), redacted."""
    return redact_url(getattr(settings, SERVICE_URL_SETTINGS[service]))


def unreachable_line(service: str, error: BaseException | str, then: str) -> str:
    """The one line for a service gone away, e.g. ``Redis is unreachable at
    redis://127.0.0.1:6379/0 (Connection refused); ingest waits for it``.

    ``service`` is "database", "redis" or "broker"; ``then`` says what happens next
    or what to do."""
    text = error if isinstance(error, str) else short_error(error)
    return _unreachable(service, service_url(service), text, then)


def unreachable_log(
    logger: logging.Logger, service: str, error: BaseException | str, then: str
) -> str:
    """Say once per outage, as a warning on ``logger``, that ``service`` is unreachable
    (``unreachable_line``), count the outage (``outage_count``) and return the line.

    Later calls for the same logger and service are debug lines until
    ``reachable_log`` says it is back, except a reminder every
    ``REMIND_AFTER_SECONDS``. An error that does not say the service is out of reach (a
    deadlock, a lock wait, Redis out of memory) is logged as a failure of the service
    every time instead, and is not counted as an outage."""
    if isinstance(error, BaseException) and _answered(error):
        text = short_error(error)
        line = f"{SERVICE_NAMES[service]} at {service_url(service)} failed ({text}); {then}"
        logger.warning("%s", line)
        return line
    line = unreachable_line(service, error, then)
    key, now = (logger.name, service), time.monotonic()
    with _outages_lock:
        said = _outages.get(key)
        if said is not None and now - said < REMIND_AFTER_SECONDS:
            logger.debug("%s", line)
            return line
        _outages[key] = now
    if said is None:
        logger.warning("%s", line)
        outage_count(service)
    else:
        logger.warning("%s (still, after %.0f s)", line, now - said)
    return line


def reachable_log(logger: logging.Logger, service: str, then: str) -> bool:
    """Say once, as an info line on ``logger``, that ``service`` answers again, if
    ``unreachable_log`` said on that logger that it was away; e.g. ``MySQL at
    mysql://... is back; the dispatch resumes``. Returns whether it said so. Cheap
    (a dict lookup): call it after every success."""
    if not _outages:
        return False
    with _outages_lock:
        said = _outages.pop((logger.name, service), None)
    if said is None:
        return False
    logger.info("%s at %s is back; %s", SERVICE_NAMES[service], service_url(service), then)
    return True


class OutageSaid:
    """``with OutageSaid(logger, then) as work:`` around work that its next run redoes
    (a sweep, partition maintenance, a delivery sent again): an error that says MySQL,
    Redis or RabbitMQ cannot be reached is said once (``unreachable_log``) and
    suppressed, and ``work.away`` names the service; other errors pass. A block that
    ends well says that a service this logger said was away is back (``back``)."""

    def __init__(self, logger: logging.Logger, then: str, *, back: str = "work goes on") -> None:
        self.logger, self.then, self.back = logger, then, back
        self.away: str | None = None

    def __enter__(self) -> OutageSaid:
        return self

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> bool:
        if exc is None:
            for service in SERVICE_NAMES:
                reachable_log(self.logger, service, self.back)
            return False
        self.away = unreachable_service(exc)
        if self.away is None and isinstance(exc, django.db.InterfaceError):
            self.away = "database"  # a connection MySQL closed under it
        if self.away is None:
            return False
        unreachable_log(self.logger, self.away, exc, self.then)
        return True


def outages_forget() -> None:
    """Forget every outage this process said (tests; a process starting afresh)."""
    with _outages_lock:
        _outages.clear()


def outage_count(service: str) -> bool:
    """Count one outage of ``service`` in Redis (``OUTAGES_KEY``); False, without
    raising, if Redis did not answer, so nothing was counted."""
    return counters_add(key=OUTAGES_KEY, amounts={service: 1})


def _unreachable(service: str, url: str, error: str, then: str) -> str:
    return f"{SERVICE_NAMES[service]} is unreachable at {url} ({error}); {then}"


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
        return _unreachable(self.service, self.url, self.error, f"{START_HINTS[self.service]}.")


def database_state(alias: str = "default") -> ServiceState:
    url = service_url("database")
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:
        connections[alias].close()
        return ServiceState("database", url, False, short_error(exc))
    return ServiceState("database", url, True)


def redis_state() -> ServiceState:
    url = service_url("redis")
    try:
        redis_client(timeout=PROBE_TIMEOUT_SECONDS).ping()
    except redis.RedisError as exc:
        return ServiceState("redis", url, False, short_error(exc))
    return ServiceState("redis", url, True)


def broker_state() -> ServiceState:
    url = service_url("broker")
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


def service_error_line(exc: BaseException) -> str | None:
    """One line naming the service behind ``exc`` and how to start it, or None if
    ``exc`` is not a service that cannot be reached."""
    if _mysql_code(exc) == MYSQL_UNKNOWN_DATABASE:
        return (
            f"MySQL at {service_url('database')} has no such database yet; 'python manage.py "
            "ensure_database' (which 'make run' calls) creates it."
        )
    service = unreachable_service(exc)
    return None if service is None else service_down_line(service, exc)


def unreachable_service(exc: BaseException) -> str | None:
    """The service ("database", "redis", "broker") that ``exc`` says cannot be
    reached, or None (a database that does not exist yet is not an outage)."""
    if _mysql_code(exc) in MYSQL_UNREACHABLE:
        return "database"
    if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
        return "redis"
    if isinstance(exc, kombu.exceptions.OperationalError | amqp.exceptions.ConnectionError):
        return "broker"  # not a bare OSError here: a file or a socket of anything else
    return None


def _answered(exc: BaseException) -> bool:
    """Whether ``exc`` came from a service that answered (MySQL with an error code that
    is not about reaching it, e.g. a deadlock; Redis with an error reply, e.g. out of
    memory): a failure, not an outage."""
    if isinstance(exc, redis.ResponseError):
        return True
    if isinstance(exc, django.db.DatabaseError | MySQLdb.Error) and exc.args:
        return isinstance(exc.args[0], int) and exc.args[0] not in MYSQL_UNREACHABLE
    return False


def _mysql_code(exc: BaseException) -> object:
    return exc.args[0] if isinstance(exc, django.db.OperationalError) and exc.args else None


def service_down_line(service: str, exc: BaseException) -> str:
    """The terminal line for ``service`` being unreachable with ``exc``: where it was
    looked for and how to start it (``ServiceState.describe``)."""
    return ServiceState(service, service_url(service), False, short_error(exc)).describe()
