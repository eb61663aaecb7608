"""The periodic drain (every 5 s) through an outage: the results wait in the buffer,
the outage is said once, not at every run, its end once, and the drain resumes."""

from __future__ import annotations

import logging

import pytest

from telemetry.buffer import buffer_depth, buffer_push
from telemetry.ingest import ingest_periodic
from tests.factories import MonitorFactory
from tests.outages import mysql_away
from tests.telemetry.test_ingest import make_results


def said(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "telemetry.ingest"]


@pytest.mark.django_db(transaction=True)  # the connection goes away mid-test
def test_the_drain_says_once_that_mysql_is_away_and_once_that_it_is_back(
    buffer, database_away, caplog
):
    with caplog.at_level(logging.INFO, logger="telemetry.ingest"):
        for _ in range(4):  # twenty seconds of drains
            assert ingest_periodic() is None

    [line] = said(caplog)
    assert line.startswith("MySQL is unreachable at mysql://") and "Redis buffer" in line
    assert not [r for r in caplog.records if r.exc_info]


@pytest.mark.django_db(transaction=True)
def test_the_drain_resumes_after_mysql_with_one_line(buffer, caplog):
    monitors = MonitorFactory.create_batch(2)
    buffer_push(results=make_results(monitors, 20))
    with caplog.at_level(logging.INFO, logger="telemetry.ingest"):
        with mysql_away():
            ingest_periodic()
            ingest_periodic()
        assert buffer_depth() == 20  # kept
        outcome = ingest_periodic()
        ingest_periodic()

    assert outcome is not None and outcome.stored == 20 and buffer_depth() == 0
    lines = said(caplog)
    assert len(lines) == 2 and lines[1].endswith("is back; ingest resumes")


def test_the_drain_says_once_that_redis_is_away(buffer, settings, caplog):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there

    with caplog.at_level(logging.INFO, logger="telemetry.ingest"):
        for _ in range(4):
            assert ingest_periodic() is None

    [line] = said(caplog)
    assert line.startswith("Redis is unreachable at redis://127.0.0.1:1/0")
    assert line.endswith("ingest waits for it")
