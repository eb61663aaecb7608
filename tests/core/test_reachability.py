"""What RabbitMQ away raises, at each layer a process meets it, is one kind of failure:
``core.reachability.BROKER_ERRORS``, said in one line naming RabbitMQ."""

from __future__ import annotations

import logging

import amqp
import pytest
from kombu import Connection

from core.reachability import BROKER_ERRORS, unreachable_log

AWAY = "127.0.0.1:1"  # nothing listens there


def kombu_connect() -> None:
    with Connection(f"amqp://guest:guest@{AWAY}//", connect_timeout=0.5) as conn:
        conn.ensure_connection(max_retries=1)


def amqp_connect() -> None:
    amqp.Connection(host=AWAY, connect_timeout=0.5).connect()


@pytest.mark.parametrize("meet", [kombu_connect, amqp_connect], ids=["kombu", "py-amqp"])
def test_the_broker_away_is_a_broker_error_whatever_layer_meets_it(meet, caplog):
    with pytest.raises(BROKER_ERRORS) as raised:
        meet()

    with caplog.at_level(logging.WARNING):
        line = unreachable_log(logging.getLogger("tests.broker"), "broker", raised.value, "wait")

    assert line.startswith("RabbitMQ is unreachable at amqp://")
    assert "refused" in line.lower()
