"""A probe batch: the specs its message carries -> checks -> the Redis buffer, and no
database (tests without the django_db mark fail on any query)."""

from __future__ import annotations

import logging
import time

import pytest
from django.utils import timezone

from core.time import to_epoch_ms as to_ms
from monitors import batch
from monitors.models import Monitor
from monitors.slots import Slot, message_encode
from monitors.tasks import probe_check_batch
from telemetry.buffer import STREAM_KEY
from telemetry.records import FailureKind
from tests.factories import MonitorFactory
from tests.telemetry.conftest import buffered_results


@pytest.fixture
def buffer(redis_client, settings, tmp_path):
    settings.TELEMETRY_SPOOL_DIR = str(tmp_path / "spool")
    return redis_client


def test_a_probe_batch_checks_what_its_message_carries_without_a_database(target, buffer):
    slot = to_ms(timezone.now())
    slots = [
        Slot(slot, 1, {"url": target.url("/ok"), "keyword": "operational"}),
        Slot(slot, 2, {"url": target.url("/status/500")}),
        Slot(slot, 3, {"url": target.url("/hang"), "timeout_seconds": 1}),
    ]
    args, kwargs = message_encode(slots)

    began = time.monotonic()
    probe_check_batch.apply(args=tuple(args), kwargs=kwargs).get()

    assert time.monotonic() - began < 2.5  # the hanging target costs its 1 s timeout
    results = {r.monitor_id: r for r in buffered_results(buffer)}
    assert set(results) == {1, 2, 3}
    assert results[1].ok and to_ms(results[1].scheduled_at) == slot
    assert results[2].failure == FailureKind.STATUS
    assert results[3].failure == FailureKind.TIMEOUT


@pytest.mark.django_db
def test_a_probe_batch_leaves_the_live_state_to_ingest(target, buffer):
    monitor = MonitorFactory(url=target.url("/status/500"), confirm_failures=1)
    slot = Slot(to_ms(timezone.now()), monitor.pk, {"url": monitor.url})

    batch.checks_run_batch(slots=[slot])

    [result] = buffered_results(buffer)
    assert result.failure == FailureKind.STATUS
    monitor.refresh_from_db()
    assert (monitor.status, monitor.last_checked_at) == (Monitor.Status.PENDING, None)


@pytest.mark.django_db
def test_an_old_form_message_is_checked_from_the_database_where_there_is_one(target, buffer):
    up = MonitorFactory(url=target.url("/ok"))
    paused = MonitorFactory(url=target.url("/ok"), enabled=False, status=Monitor.Status.PAUSED)
    old_form = [[m.pk, to_ms(timezone.now())] for m in (up, paused)]

    probe_check_batch.apply(args=(old_form,)).get()

    [result] = buffered_results(buffer)
    assert result.monitor_id == up.pk and result.ok  # the paused one's slot no longer stands


def test_an_old_form_message_is_dropped_with_one_line_where_there_is_no_database(
    buffer, monkeypatch, caplog
):
    monkeypatch.setattr(batch, "database_configured", lambda: False)

    with caplog.at_level(logging.WARNING, logger="monitors.batch"):
        probe_check_batch.apply(args=([[1, to_ms(timezone.now())], [2, 0]],)).get()

    assert buffered_results(buffer) == []
    [line] = [r.getMessage() for r in caplog.records if r.name == "monitors.batch"]
    assert line.startswith("dropped 2 slots of an old-form probe message")


def test_results_are_pushed_as_their_checks_finish_not_with_the_slowest(
    target, buffer, monkeypatch
):
    pushes: list[tuple[float, list[int]]] = []
    push = batch.buffer_push

    def recording(*, results, kinds):
        pushes.append((time.monotonic(), [r.monitor_id for r in results]))
        push(results=results, kinds=kinds)

    monkeypatch.setattr(batch, "buffer_push", recording)
    slot = to_ms(timezone.now())
    began = time.monotonic()

    batch.checks_run_batch(
        slots=[
            Slot(slot, 1, {"url": target.url("/ok")}),
            Slot(slot, 2, {"url": target.url("/hang"), "timeout_seconds": 2}),
        ]
    )

    [(fast_at, fast), (slow_at, slow)] = [(at, ids) for at, ids in pushes if ids]
    assert fast == [1] and fast_at - began < 1.0  # within PUSH_EVERY_SECONDS of its end
    assert slow == [2] and slow_at - began >= 2.0  # its 2 s timeout
    assert buffer.xlen(STREAM_KEY) == 2  # one entry (one round trip) per push
