from __future__ import annotations

import pytest
from kombu import Connection

from core.broker import QueueArgumentsChanged, broker_queues_ensure
from sentinel.celery import app


@pytest.fixture
def channel(settings):
    with Connection(settings.CELERY_BROKER_URL) as conn:
        yield conn.channel()
    broker_queues_ensure(app=app)  # leave the real topology behind


def test_it_recreates_an_empty_queue_declared_without_the_dead_letter_argument(channel):
    channel.queue_delete("alerts")
    channel.queue_declare("alerts", durable=True, auto_delete=False)  # an old version's queue

    notes = broker_queues_ensure(app=app)

    assert notes == ["re-created the empty queue 'alerts' with its new arguments"]
    assert broker_queues_ensure(app=app) == []  # and it now matches


def test_it_leaves_a_queue_with_messages_alone_and_says_so(channel):
    from kombu import Exchange, Producer
    from kombu import Queue as KombuQueue

    channel.queue_delete("alerts")
    old = KombuQueue("alerts", Exchange("alerts", type="direct"), routing_key="alerts")
    old.bind(channel).declare()
    Producer(channel).publish({"x": 1}, exchange="alerts", routing_key="alerts")

    with pytest.raises(QueueArgumentsChanged, match="still holds 1 message"):
        broker_queues_ensure(app=app)

    channel.queue_delete("alerts")


def test_it_recreates_the_dead_letter_exchange_of_an_older_version_as_a_headers_exchange(
    channel,
):
    channel.exchange_delete("sentinel.dead")
    channel.exchange_declare("sentinel.dead", "fanout", durable=True)  # as it was
    channel.queue_bind("dead", "sentinel.dead")

    notes = broker_queues_ensure(app=app)

    assert notes == ["re-created the exchange 'sentinel.dead' as a headers exchange"]
    assert broker_queues_ensure(app=app) == []
