from __future__ import annotations

import logging

import pytest

from telemetry.buffer import (
    DEPTH_KEY,
    STREAM_KEY,
    buffer_depth,
    buffer_oldest_age_seconds,
    buffer_push,
    buffer_stats,
    spool_size,
)
from telemetry.buffer import push as buffer_module
from telemetry.buffer import spool as spool_module
from telemetry.records import payload_encode
from tests.factories import CheckResultFactory
from tests.telemetry.conftest import buffered_results as stored_results


def test_it_appends_results_to_the_stream(buffer):
    results = CheckResultFactory.create_batch(3)

    buffer_push(results=results)

    assert stored_results(buffer) == results
    assert buffer.xlen(STREAM_KEY) == 1  # one entry for the batch
    assert buffer_depth() == 3


def test_a_large_batch_is_split_into_entries_of_at_most_500_results(buffer):
    results = CheckResultFactory.create_batch(1200)

    buffer_push(results=results)

    assert stored_results(buffer) == results
    counts = [int(fields[b"n"]) for _, fields in buffer.xrange(STREAM_KEY)]
    assert counts == [500, 500, 200]
    assert buffer_depth() == 1200


def test_the_depth_is_zero_when_the_stream_is_empty_whatever_the_counter_says(buffer):
    buffer.set(DEPTH_KEY, 40)  # e.g. the stream was deleted by hand

    assert buffer_depth() == 0
    buffer.xadd(STREAM_KEY, {"r": b"{}"})  # an entry nobody counted still holds one
    assert buffer_depth() == 40
    buffer.set(DEPTH_KEY, 0)
    assert buffer_depth() == 1


def test_it_reports_the_age_of_the_oldest_waiting_result(buffer):
    assert buffer_oldest_age_seconds() is None
    buffer.xadd(STREAM_KEY, {"r": b"{}"}, id="1700000000000-0")
    buffer.xadd(STREAM_KEY, {"r": b"{}"}, id="1700000005000-0")

    assert buffer_oldest_age_seconds(now=1700000010.0) == 10.0
    stats = buffer_stats()
    assert (stats.depth, stats.dead_letters) == (2, 0)
    assert stats.oldest_age_seconds is not None and stats.oldest_age_seconds > 10


def test_it_spools_results_while_redis_is_down_and_replays_them_later(
    buffer, settings, monkeypatch, caplog
):
    monkeypatch.setattr(buffer_module, "PUSH_BACKOFF_SECONDS", (0.01,))
    first, second = CheckResultFactory.create_batch(2), CheckResultFactory.create_batch(3)
    working_url = settings.REDIS_URL
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there

    with caplog.at_level(logging.INFO, logger="telemetry.buffer"):
        buffer_push(results=first[:1])
        buffer_push(results=first[1:])  # spooled again: said once

        assert spool_size() == 2
        [line] = [r.getMessage() for r in caplog.records]
        assert line.startswith("Redis is unreachable at redis://127.0.0.1:1/0")
        assert "1 results" in line

        settings.REDIS_URL = working_url
        buffer_push(results=second)

    assert (
        caplog.records[1]
        .getMessage()
        .endswith("is back; spooled results are replayed into the buffer")
    )

    assert spool_size() == 0
    assert sorted(r.scheduled_at for r in stored_results(buffer)) == sorted(
        r.scheduled_at for r in first + second
    )


def test_a_spool_claimed_by_a_dead_process_is_taken_over(buffer, settings, monkeypatch):
    monkeypatch.setattr(spool_module, "SPOOL_CLAIM_STALE_SECONDS", 0)
    path = spool_module.spool_write(payloads=[payload_encode(CheckResultFactory.create_batch(2))])
    path.rename(path.with_name(path.name + ".claimed-999999-dead"))

    assert buffer_module.spool_replay() == 2
    assert buffer_depth() == 2
    assert spool_size() == 0


def test_it_raises_only_when_neither_redis_nor_the_spool_can_take_the_results(
    buffer, settings, monkeypatch, tmp_path
):
    monkeypatch.setattr(buffer_module, "PUSH_BACKOFF_SECONDS", ())
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    settings.TELEMETRY_SPOOL_DIR = str(blocker / "spool")

    with pytest.raises(OSError):
        buffer_push(results=CheckResultFactory.create_batch(1))
