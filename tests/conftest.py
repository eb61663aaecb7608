from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from django.conf import settings

from tests.factories import UserFactory


@pytest.fixture(autouse=True, scope="session")
def _broker_queues() -> None:
    # Queues made by an older version lack the dead-letter argument; RabbitMQ would
    # refuse every publish to them (PRECONDITION_FAILED). Empty ones are re-created.
    from sentinel.broker import broker_queues_ensure
    from sentinel.celery import app

    broker_queues_ensure(app=app)


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
