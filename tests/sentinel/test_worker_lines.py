"""A worker or Beat says once that RabbitMQ is away, not a line per reconnect attempt."""

from __future__ import annotations

import logging
import os
import time

from celery.worker.consumer import consumer

from sentinel import celery as sentinel_celery
from tests.workers import celery_worker

AWAY = "amqp://guest:guest@127.0.0.1:1//"  # nothing listens there


def test_a_worker_started_while_rabbitmq_is_away_says_so_once(tmp_path):
    log = tmp_path / "worker.log"
    with celery_worker(
        environment={**os.environ, "CELERY_BROKER_URL": AWAY}, log=log, name="away-test"
    ) as worker:
        time.sleep(12)  # its start and a few reconnect attempts (0, 2, 4 s apart)
        assert worker.poll() is None, log.read_text()  # still running, reconnecting

    output = log.read_text()
    assert output.count("RabbitMQ is unreachable at amqp://guest:***@127.0.0.1:1//") == 1, output
    assert "Cannot connect to" not in output and "Traceback" not in output, output


def test_celerys_lines_for_a_lost_connection_and_its_return_are_one_line_each(caplog):
    lost = logging.getLogger("celery.worker.consumer.consumer")
    back = logging.getLogger("celery.worker.consumer.connection")
    refused = ConnectionRefusedError(111, "Connection refused")

    # Celery's own texts (its stubs do not declare them), so a change there fails here.
    retry, error = consumer.CONNECTION_RETRY, consumer.CONNECTION_ERROR  # type: ignore[attr-defined]
    with caplog.at_level(logging.INFO):
        lost.warning("%s (%r)", retry, refused)
        for step in range(3):
            lost.error(error, AWAY, refused, f"Trying again ({step}/100)")
        back.info("Connected to %s", "amqp://guest:**@127.0.0.1:5672//")

    said = [(r.name, r.getMessage()) for r in caplog.records]
    assert said[0][0] == "sentinel.celery" and said[0][1].startswith("RabbitMQ is unreachable")
    assert "Connection refused" in said[0][1]
    assert said[1][1].endswith("is back; tasks flow again")
    assert said[2] == (
        "celery.worker.consumer.connection",
        "Connected to amqp://guest:**@127.0.0.1:5672//",
    )
    assert len(said) == 3
    assert sentinel_celery.WHILE_BROKER_AWAY in said[0][1]
