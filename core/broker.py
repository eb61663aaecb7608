"""RabbitMQ topology: declare the queues of CELERY_TASK_QUEUES, including ``dead``.

RabbitMQ refuses to redeclare a queue with different arguments (406
PRECONDITION_FAILED), and the queues gained a dead-letter argument after they were
first created on existing installations. An *empty, idle* queue is safe to replace,
so that is done here; a queue with messages or consumers is left alone, with one line
saying what to do.
"""

from __future__ import annotations

from typing import Any

import amqp
from celery import Celery


class QueueArgumentsChanged(Exception):
    pass


def broker_queues_ensure(*, app: Celery) -> list[str]:
    """Declare every queue; return a note for each one that had to be re-created."""
    notes: list[str] = []
    with app.connection_for_write() as conn:
        for queue in app.amqp.queues.values():
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
