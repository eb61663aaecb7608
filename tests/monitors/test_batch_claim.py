"""A probe batch delivered again (RabbitMQ restarted, a worker died) checks no slot
twice, and still checks the slots no delivery before it finished."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter

import pytest
from django.conf import settings
from django.utils import timezone
from kombu import Connection

from core.time import to_epoch_ms as to_ms
from monitors import batch
from monitors.dispatch import PROBE_TASK
from monitors.slots import Slot, message_encode
from sentinel.celery import app
from tests.monitors.conftest import START_TIMEOUT_S
from tests.telemetry.conftest import buffered_results


@pytest.fixture
def buffer(redis_client, settings, tmp_path):
    settings.TELEMETRY_SPOOL_DIR = str(tmp_path / "spool")
    return redis_client


def slots_for(target, *paths, at=None):
    at = to_ms(timezone.now()) if at is None else at
    return [Slot(at, n, {"url": target.url(path)}) for n, path in enumerate(paths, start=1)]


def checked(buffer):
    """How often each slot's result reached the buffer."""
    return Counter((r.monitor_id, to_ms(r.scheduled_at)) for r in buffered_results(buffer))


def test_a_batch_delivered_again_after_it_was_checked_is_skipped(target, buffer, caplog):
    slots = slots_for(target, "/ok", "/status/503")

    first = batch.checks_run_batch(slots=slots, batch_id="batch-1")
    with caplog.at_level(logging.INFO, logger="monitors.batch"):
        again = batch.checks_run_batch(slots=slots, batch_id="batch-1")

    assert len(first) == 2 and again == []
    assert set(checked(buffer).values()) == {1}
    assert "2 of its 2 slots were already checked" in caplog.text
    assert buffer.get(batch.CLAIM_KEY.format("batch-1")) is None  # released
    kept = max(settings.SENTINEL_PROBE_EXPIRE_SECONDS, settings.SENTINEL_DISPATCH_CATCH_UP_SECONDS)
    assert kept <= buffer.ttl(batch.DONE_KEY.format("batch-1")) <= kept + 60 + 20


def test_another_batch_with_the_same_slots_is_checked(target, buffer):
    slots = slots_for(target, "/ok")

    batch.checks_run_batch(slots=slots, batch_id="batch-1")
    batch.checks_run_batch(slots=slots, batch_id="check-now-2")  # another message

    assert set(checked(buffer).values()) == {2}


def test_a_batch_being_checked_is_left_to_the_worker_checking_it(target, buffer):
    slots = slots_for(target, "/slow?s=1", "/ok")
    first: list = []
    checking = threading.Thread(
        target=lambda: first.extend(batch.checks_run_batch(slots=slots, batch_id="batch-1"))
    )

    checking.start()
    time.sleep(0.3)  # the first delivery holds the claim and is checking
    began = time.monotonic()
    again = batch.checks_run_batch(slots=slots, batch_id="batch-1")
    waited = time.monotonic() - began
    checking.join()

    assert len(first) == 2 and again == []
    assert waited >= 0.5  # it waited for the first delivery to finish
    assert set(checked(buffer).values()) == {1}


def test_the_slots_a_killed_worker_never_finished_are_checked_on_delivery_again(target, buffer):
    slots = slots_for(target, "/ok", "/ok", "/ok")
    # A worker claimed the batch, pushed the first slot's result and was killed: its
    # claim is left to expire.
    buffer.set(batch.CLAIM_KEY.format("batch-1"), "dead worker", px=1500)
    buffer.sadd(batch.DONE_KEY.format("batch-1"), f"1:{slots[0].scheduled_ms}")

    began = time.monotonic()
    results = batch.checks_run_batch(slots=slots, batch_id="batch-1")

    assert time.monotonic() - began >= 1.0  # the dead worker's claim expired first
    assert sorted(r.monitor_id for r in results) == [2, 3]
    assert {key[0] for key in checked(buffer)} == {2, 3}


def test_without_redis_a_batch_is_checked_without_a_claim_said_once(
    target, buffer, settings, caplog
):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    slots = slots_for(target, "/ok")

    with caplog.at_level(logging.WARNING):
        for n in range(3):
            assert len(batch.checks_run_batch(slots=slots, batch_id=f"batch-{n}")) == 1

    said = [r.getMessage() for r in caplog.records if r.name == "monitors.batch"]
    assert len(said) == 1 and said[0].startswith("Redis is unreachable at redis://127.0.0.1:1/0")
    assert "Traceback" not in caplog.text


def test_a_real_message_delivered_again_is_not_checked_twice(probe_worker, target, buffer):
    """RabbitMQ delivers a message again that a worker checked but could not
    acknowledge (its connection was lost): the worker that gets it skips it."""

    worker, log = probe_worker
    slots = slots_for(target, "/ok", "/status/503")
    args, kwargs = message_encode(slots)
    app.send_task(PROBE_TASK, args=args, kwargs=kwargs, task_id="redelivered-1")
    # Taken by a "worker" that checks the batch, then loses its connection before the
    # ack: RabbitMQ puts the message back as redelivered.
    with Connection(settings.CELERY_BROKER_URL) as conn:
        queue = conn.SimpleQueue(app.amqp.queues["probes"])  # type: ignore[arg-type]
        message = queue.get(timeout=5)
        assert message.headers["id"] == "redelivered-1"
        batch.checks_run_batch(slots=slots, batch_id=message.headers["id"])
        message.requeue()
        queue.close()

    deadline = time.monotonic() + START_TIMEOUT_S
    output = ""
    while time.monotonic() < deadline and worker.poll() is None:
        output = log.read_text()
        if "already checked" in output:
            break
        time.sleep(0.5)

    assert "probe batch redelivered-1 delivered again: 2 of its 2 slots were already checked" in (
        output
    ), output
    assert set(checked(buffer).values()) == {1}
