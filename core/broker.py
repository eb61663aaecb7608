"""RabbitMQ topology: declare the queues of CELERY_TASK_QUEUES, including ``dead``.

RabbitMQ refuses to redeclare a queue with different arguments (406
PRECONDITION_FAILED), and the queues gained a dead-letter argument after they were
first created on existing installations. An *empty, idle* queue is safe to replace,
so that is done here; a queue with messages or consumers is left alone, with one line
saying what to do. An exchange of another type (the dead-letter exchange was a fanout
before it took only rejected messages) holds no messages and is re-created: its
bindings are declared again with its queues.
"""

from __future__ import annotations

from typing import Any

import amqp
from celery import Celery
from kombu import Exchange


class QueueArgumentsChanged(Exception):
    pass


def broker_queues_ensure(*, app: Celery) -> list[str]:
    """Declare every queue; return a note for each one that had to be re-created."""
    notes: list[str] = []
    with app.connection_for_write() as conn:
        for queue in app.amqp.queues.values():
            if queue.exchange is not None and queue.exchange.name:
                notes += _exchange_ensure(conn, queue.exchange)
            channel: Any = conn.channel()
            try:
                queue.bind(channel).declare()
            except amqp.exceptions.PreconditionFailed:
                # The broker closed that channel; work on a fresh one.
                channel = conn.channel()
                _name, messages, consumers = channel.queue_declare(queue.name, passive=True)
                if messages or consumers:
                    raise QueueArgumentsChanged(
                        f"RabbitMQ queue {queue.name!r} has other arguments than "
                        f"sentinel/settings.py and still holds {messages} message(s) / "
                        f"{consumers} consumer(s); drain it, then 'rabbitmqctl delete_queue "
                        f"{queue.name}' and start again."
                    ) from None
                channel.queue_delete(queue.name)
                queue.bind(channel).declare()
                notes.append(f"re-created the empty queue {queue.name!r} with its new arguments")
            finally:
                channel.close()
    return notes


def queue_depth(*, app: Celery, name: str) -> tuple[int, int]:
    """``(messages ready, consumers)`` of queue ``name``, by a passive declare (which
    needs no permission on the queue). ``amqp.exceptions.NotFound`` if there is none."""
    with app.connection_for_write() as conn:
        channel: Any = conn.channel()
        try:
            _name, messages, consumers = channel.queue_declare(name, passive=True)
        finally:
            if channel.is_open:
                channel.close()
    return int(messages), int(consumers)


def _exchange_ensure(conn: Any, exchange: Exchange) -> list[str]:
    """Declare ``exchange``; re-create it if it exists with another type."""
    channel: Any = conn.channel()
    try:
        exchange.bind(channel).declare()
        return []
    except amqp.exceptions.PreconditionFailed:
        channel = conn.channel()  # the broker closed the other one
        channel.exchange_delete(exchange.name)
        exchange.bind(channel).declare()
        return [f"re-created the exchange {exchange.name!r} as a {exchange.type} exchange"]
    finally:
        channel.close()
