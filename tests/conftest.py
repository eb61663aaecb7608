from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from django.conf import settings
from django.db import connection

from tests.factories import UserFactory


@pytest.fixture(autouse=True, scope="session")
def _broker_queues() -> None:
    # Queues made by an older version lack the dead-letter argument; RabbitMQ would
    # refuse every publish to them (PRECONDITION_FAILED). Empty ones are re-created.
    from core.broker import broker_queues_ensure
    from sentinel.celery import app

    broker_queues_ensure(app=app)


@pytest.fixture(autouse=True)
def _no_outage_said_before():
    # Each component says an outage once per process (core.reachability): a test that
    # met one must not silence the next test's line.
    from core.reachability import outages_forget

    outages_forget()
    yield
    outages_forget()


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    # PBKDF2 at Django's default cost is a third of a second per login.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    """The tests' own Redis database (REDIS_URL points at db 15), emptied around each test."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def other_user(db):
    return UserFactory()


@pytest.fixture
def operator(db):
    return UserFactory(is_staff=True, is_superuser=True)


def _queue_taker(url: str, name: str) -> Iterator:
    from kombu import Connection

    from sentinel.celery import app

    conn = Connection(url)
    queue = conn.SimpleQueue(app.amqp.queues[name])  # type: ignore[arg-type]
    queue.clear()

    def take():
        messages: list = []
        while True:
            try:
                message = queue.get(timeout=0.5)
            except queue.Empty:
                return messages
            message.ack()
            messages.append(message)

    yield take
    queue.clear()
    queue.close()
    conn.close()


@pytest.fixture
def probes_queue(settings):
    """Empties the broker's ``probes`` queue; call it to take what was published since."""
    yield from _queue_taker(settings.CELERY_BROKER_URL, "probes")


@pytest.fixture
def dispatch_queue(settings):
    """Empties the broker's ``dispatch`` queue; call it to take what was published since."""
    yield from _queue_taker(settings.CELERY_BROKER_URL, "dispatch")


@pytest.fixture
def alerts_queue(settings):
    """Empties the broker's ``alerts`` queue; call it to take what was published since."""
    yield from _queue_taker(settings.CELERY_BROKER_URL, "alerts")


@pytest.fixture
def database_away():
    """MySQL gone away for the code under test (``tests.outages.mysql_away``)."""
    from tests.outages import mysql_away

    with mysql_away():
        yield


TELEMETRY_TABLES = (
    "check_result",
    "check_rollup_hourly",
    "check_rollup_daily",
    "check_rollup_pending",
    "monitor_rollup_summary",
    "check_summary_pending",
    "heartbeat_ping",
)


@pytest.fixture
def telemetry_tables(db) -> Iterator[None]:
    """Empty raw and rollup tables. They are not Django models, so the flush after a
    transactional test leaves them alone; DELETE (not TRUNCATE, which commits) keeps
    the ordinary tests inside their transaction."""

    def empty() -> None:
        with connection.cursor() as cursor:
            for table in TELEMETRY_TABLES:
                cursor.execute(f"DELETE FROM {table}")

    empty()
    yield
    empty()
