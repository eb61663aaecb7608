"""Broker topology against the real RabbitMQ: what gives up lands in the dead queue."""

from __future__ import annotations

import time

import pytest
import redis
from celery.exceptions import Reject, Retry
from kombu import Connection

from monitors import tasks
from sentinel.celery import app


@pytest.fixture
def channel(settings):
    with Connection(settings.CELERY_BROKER_URL) as conn:
        channel = conn.channel()
        for name in ("probes", "dead"):
            queue = app.amqp.queues[name].bind(channel)
            queue.declare()
            queue.purge()
        yield channel
        for name in ("probes", "dead"):
            app.amqp.queues[name].bind(channel).purge()


def test_a_rejected_probe_message_is_dead_lettered(channel):
    probes = app.amqp.queues["probes"].bind(channel)
    dead = app.amqp.queues["dead"].bind(channel)
    app.send_task("monitors.probes.check_batch", args=[[[1, 0]]])

    message = None
    for _ in range(20):
        message = probes.get(no_ack=False)
        if message is not None:
            break
    assert message is not None
    message.reject(requeue=False)

    dead_message = None
    for _ in range(20):
        dead_message = dead.get(no_ack=True)
        if dead_message is not None:
            break
    assert dead_message is not None
    assert dead_message.headers["task"] == "monitors.probes.check_batch"


def test_the_probe_task_retries_a_transient_error_then_gives_up_with_a_reject(monkeypatch):
    def redis_away(*, slots, batch_id=None, region="local", token=""):
        raise redis.ConnectionError("Connection refused")

    monkeypatch.setattr(tasks, "checks_run_batch", redis_away)

    with pytest.raises(Retry):
        tasks.probe_check_batch.apply(args=([[1, 0]],), throw=True)
    gave_up = tasks.probe_check_batch.apply(args=([[1, 0]],), retries=tasks.PROBE_RETRIES)

    assert gave_up.state == "REJECTED"
    assert isinstance(gave_up.result, Reject)
    assert gave_up.result.requeue is False  # so RabbitMQ dead-letters it


def test_a_message_whose_expiry_passed_in_its_queue_is_not_a_dead_letter(channel):
    """A periodic task queued while no worker took it (the workers or the broker were
    away) expires in RabbitMQ; it must not end up beside real dead letters."""
    probes = app.amqp.queues["probes"].bind(channel)
    dead = app.amqp.queues["dead"].bind(channel)
    app.send_task("monitors.probes.check_batch", args=[[[1, 0]]], expires=0.2)
    app.send_task("monitors.probes.check_batch", args=[[[2, 0]]])  # then rejected

    time.sleep(0.5)  # the first one's expiry passes in the queue
    rejected = None
    for _ in range(20):
        rejected = probes.get(no_ack=False)
        if rejected is not None:
            break
    assert rejected is not None and rejected.payload[0] == [[[2, 0]]]
    rejected.reject(requeue=False)
    time.sleep(0.3)

    letters = []
    while (letter := dead.get(no_ack=True)) is not None:
        letters.append(letter)
    assert [letter.payload[0] for letter in letters] == [[[[2, 0]]]]
    assert letters[0].headers["x-first-death-reason"] == "rejected"
    assert probes.get(no_ack=True) is None  # the expired one is gone, not waiting
