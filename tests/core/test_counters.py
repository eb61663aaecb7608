"""core.counters and the outage counter: counted in Redis when it answers, never an
error for the work being counted when it does not."""

from __future__ import annotations

import logging

import pytest
import redis
from django.db import OperationalError

from core import reachability
from core.counters import counters_add, counters_read
from core.reachability import OUTAGES_KEY, outage_count, reachable_log, unreachable_log

KEY = "sentinel:counters:test"


def test_it_adds_to_the_fields_it_is_given_and_skips_zeros(redis_client):
    assert counters_add(key=KEY, amounts={"a": 2, "b": 0})
    assert counters_add(key=KEY, amounts={"a": 1, "c": 5})

    assert redis_client.hgetall(KEY) == {b"a": b"3", b"c": b"5"}
    assert counters_read(client=redis_client, keys=[KEY, "sentinel:counters:none"]) == [
        {"a": 3, "c": 5},
        {},
    ]


def test_it_counts_nothing_and_raises_nothing_while_redis_is_away(redis_client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there

    assert counters_add(key=KEY, amounts={"a": 1}) is False
    assert outage_count("database") is False


def test_it_says_and_counts_an_outage_once_until_the_service_is_back(redis_client, caplog):
    logger = logging.getLogger("tests.outages")
    with caplog.at_level(logging.INFO, logger="tests.outages"):
        line = unreachable_log(logger, "database", ConnectionError("refused"), "it waits")
        for _ in range(5):  # a retry loop meeting it again and again
            unreachable_log(logger, "database", "refused", "it waits")
        unreachable_log(logger, "broker", "refused", "it waits")
        assert reachable_log(logger, "database", "it resumes")
        assert not reachable_log(logger, "database", "it resumes")  # said once
        unreachable_log(logger, "database", "refused", "it waits")  # a second outage

    said = [r.getMessage() for r in caplog.records]
    assert line.startswith("MySQL is unreachable at ") and line.endswith("(refused); it waits")
    assert said[0] == line and said[1].startswith("RabbitMQ is unreachable at ")
    assert said[2].startswith("MySQL at mysql://") and said[2].endswith(" is back; it resumes")
    assert said[3] == line and len(said) == 4
    assert redis_client.hgetall(OUTAGES_KEY) == {b"database": b"2", b"broker": b"1"}


def test_each_component_says_the_outage_it_met_and_a_long_one_is_recalled(
    redis_client, caplog, monkeypatch
):
    drain, beat = logging.getLogger("tests.drain"), logging.getLogger("tests.beat")
    with caplog.at_level(logging.WARNING):
        unreachable_log(drain, "database", "refused", "the drain waits")
        unreachable_log(beat, "database", "refused", "Beat waits")
        monkeypatch.setattr(reachability, "REMIND_AFTER_SECONDS", 0.0)
        unreachable_log(drain, "database", "refused", "the drain waits")

    said = [(r.name, r.getMessage()) for r in caplog.records]
    assert [name for name, _ in said] == ["tests.drain", "tests.beat", "tests.drain"]
    assert "(still, after" in said[2][1]
    assert redis_client.hgetall(OUTAGES_KEY) == {b"database": b"2"}  # a reminder is no outage


def test_an_outage_of_redis_is_counted_only_if_redis_answers_the_count(
    redis_client, settings, caplog
):
    logger = logging.getLogger("tests.outages")
    working_url = settings.REDIS_URL
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    with caplog.at_level(logging.WARNING, logger="tests.outages"):
        unreachable_log(logger, "redis", "Connection refused", "it waits")
    settings.REDIS_URL = working_url

    assert len(caplog.records) == 1  # logged all the same
    assert redis_client.hgetall(OUTAGES_KEY) == {}

    reachable_log(logger, "redis", "it resumes")
    unreachable_log(logger, "redis", "Timeout reading from socket", "it retries")  # a blip

    assert redis_client.hgetall(OUTAGES_KEY) == {b"redis": b"1"}


@pytest.mark.parametrize(
    ("service", "error"),
    [
        ("database", OperationalError(1213, "Deadlock found when trying to get lock")),
        ("database", OperationalError(1205, "Lock wait timeout exceeded")),
        ("redis", redis.ResponseError("OOM command not allowed when used memory > 'maxmemory'")),
    ],
)
def test_an_error_from_a_service_that_answered_is_a_failure_not_an_outage(
    redis_client, caplog, service, error
):
    logger = logging.getLogger("tests.outages")
    with caplog.at_level(logging.WARNING, logger="tests.outages"):
        line = unreachable_log(logger, service, error, "it retries")

    assert " failed (" in line and "unreachable" not in line
    assert redis_client.hgetall(OUTAGES_KEY) == {}
