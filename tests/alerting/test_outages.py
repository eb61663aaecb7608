"""Periodic and queued work that meets MySQL away says so once and is done later:
the alerting sweep, deliveries, partition maintenance."""

from __future__ import annotations

import logging

import pytest
from django.db import OperationalError

from alerting import tasks as alerting_tasks
from core.reachability import OutageSaid
from telemetry import tasks as telemetry_tasks


def warnings_of(caplog, name):
    return [r.getMessage() for r in caplog.records if r.name == name and r.levelno >= 30]


@pytest.mark.django_db(transaction=True)
def test_the_alerting_sweep_says_once_that_mysql_is_away(database_away, caplog):
    with caplog.at_level(logging.INFO):
        for _ in range(3):
            alerting_tasks.sweep.apply().get()  # no error: the next minute's run does it

    [line] = warnings_of(caplog, "alerting.tasks")
    assert line.startswith("MySQL is unreachable at mysql://")
    assert line.endswith(alerting_tasks.SWEEP_WAITS)
    assert not [r for r in caplog.records if r.exc_info]


@pytest.mark.django_db(transaction=True)
def test_a_delivery_that_meets_mysql_away_is_sent_again_later(database_away, alerts_queue, caplog):
    with caplog.at_level(logging.INFO):
        alerting_tasks.deliver_many.apply(args=([7, 8],)).get()
        alerting_tasks.deliver_many.apply(args=([9],)).get()

    again = alerts_queue()
    assert [m.payload[0] for m in again] == [[[7, 8]], [[9]]]
    assert all(m.headers["eta"] for m in again)  # after DELIVERY_AGAIN_SECONDS
    assert len(warnings_of(caplog, "alerting.tasks")) == 1


@pytest.mark.django_db(transaction=True)
def test_partition_maintenance_says_once_that_mysql_is_away(database_away, caplog):
    with caplog.at_level(logging.INFO):
        telemetry_tasks.maintain_partitions.apply().get()
        telemetry_tasks.maintain_partitions.apply().get()

    [line] = warnings_of(caplog, "telemetry.tasks")
    assert line.startswith("MySQL is unreachable") and "next hourly run" in line


def test_an_error_that_is_no_outage_is_raised_as_it_is(caplog):
    with pytest.raises(ValueError), OutageSaid(logging.getLogger("tests.work"), "it waits"):
        raise ValueError("a bug, not an outage")

    assert caplog.records == []


def test_work_that_ends_well_after_an_outage_says_the_service_is_back(caplog):
    logger = logging.getLogger("tests.work")
    down = OperationalError(2003, "Can't connect to server on '127.0.0.1' (111)")
    with caplog.at_level(logging.INFO, logger="tests.work"):
        with OutageSaid(logger, "it waits") as away:
            raise down
        with OutageSaid(logger, "it waits", back="it goes on") as fine:
            pass

    assert (away.away, fine.away) == ("database", None)
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 2 and said[1].endswith("is back; it goes on")
