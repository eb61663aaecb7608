"""A real probe worker with no database settings at all: RabbitMQ in, Redis out."""

from __future__ import annotations

import time

from django.utils import timezone

from core.time import to_epoch_ms as to_ms
from monitors.dispatch import PROBE_TASK
from monitors.slots import Slot, message_encode
from sentinel.celery import app
from telemetry.records import CheckResult, FailureKind
from tests.monitors.conftest import START_TIMEOUT_S
from tests.telemetry.conftest import buffered_results


def test_a_probe_worker_without_database_settings_checks_a_batch(
    probe_worker, target, redis_client
):
    worker, log = probe_worker
    # One message of the old form first: this worker has nothing to read its monitors
    # from, so it drops it with one line and goes on.
    app.send_task(PROBE_TASK, args=[[[999, to_ms(timezone.now())]]])
    slot = to_ms(timezone.now())
    args, kwargs = message_encode(
        [
            Slot(slot, 1, {"url": target.url("/ok"), "keyword": "operational"}),
            Slot(slot, 2, {"url": target.url("/status/503")}),
        ]
    )
    app.send_task(PROBE_TASK, args=args, kwargs=kwargs)

    deadline = time.monotonic() + START_TIMEOUT_S
    results: dict[int, CheckResult] = {}
    while len(results) < 2 and time.monotonic() < deadline and worker.poll() is None:
        time.sleep(0.5)
        results = {r.monitor_id: r for r in buffered_results(redis_client)}

    output = log.read_text()
    assert set(results) == {1, 2}, output
    assert results[1].ok and to_ms(results[1].scheduled_at) == slot
    assert results[2].failure == FailureKind.STATUS and results[2].status_code == 503
    assert "dropped 1 slots of an old-form probe message" in output
    assert "This process has no database" not in output  # nothing on the way tried one
