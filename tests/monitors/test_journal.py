"""Slots claimed in MySQL but not yet in RabbitMQ are not lost: the dispatch journal in
Redis keeps them, the next dispatch sends them, and a batch sent again is the same
batch to the probe batch claim, so no slot is checked twice.

Against the real MariaDB, Redis and RabbitMQ (the broker away is a port where nothing
listens).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter

import pytest
from celery import Celery
from django.utils import timezone

from core.reachability import BROKER_ERRORS
from core.regions import LOCAL
from core.time import to_epoch_ms as to_ms
from monitors import batch, dispatch
from monitors.dispatch import dispatch_due, monitors_claim, probe_batches_publisher
from monitors.journal import GROUPS_KEY, JOURNAL_KEY, Journal, batch_task_id
from monitors.models import Monitor
from monitors.slots import Slot, message_decode
from tests.monitors.test_dispatch import Collect, make_monitors
from tests.telemetry.conftest import buffered_results

pytestmark = pytest.mark.django_db

SECOND = dt.timedelta(seconds=1)


@pytest.fixture
def buffer(redis_client, settings, tmp_path):
    settings.TELEMETRY_SPOOL_DIR = str(tmp_path / "spool")
    return redis_client


@pytest.fixture
def broker_away() -> Celery:
    """A Celery app whose RabbitMQ is away (nothing listens on its port) for what it
    publishes; not the current app, so nothing else in the run goes through it."""
    app = Celery("sentinel-broker-away", set_as_current=False)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    # broker_write_url: CELERY_BROKER_URL in the environment outranks broker_url.
    app.conf.update(
        broker_write_url="amqp://guest:guest@127.0.0.1:1//",
        task_publish_retry=False,
        broker_connection_timeout=0.5,
    )
    return app


def due_monitors(count: int, now: dt.datetime) -> list[int]:
    """Monitors whose slot was 2 s ago: each one slot a dispatch of a 1 s horizon hands
    out, and checked at once."""
    return make_monitors(count, next_check_at=now - 2 * SECOND)


def pairs_of(messages) -> Counter:
    """How often each (monitor, slot) was published in ``messages``."""
    return Counter(tuple(pair) for m in messages for pair in m.decode()[0][0])


def test_slots_whose_publish_met_the_broker_away_are_sent_by_the_next_dispatch(
    redis_client, probes_queue, broker_away
):
    now = timezone.now()
    ids = due_monitors(5, now)

    with pytest.raises(BROKER_ERRORS):
        dispatch_due(
            now=now,
            horizon_seconds=1,
            publish=probe_batches_publisher(batch_size=250, app=broker_away),
            journal=Journal(),
        )
    # Not handed back to MySQL, where the next claim would make new batches of them.
    assert not Monitor.objects.filter(pk__in=ids, next_check_at__lt=now).exists()
    assert redis_client.hlen(JOURNAL_KEY) == 5

    report = dispatch_due(now=now + SECOND, horizon_seconds=1)  # the broker is back

    assert (report.republished, report.claimed) == (5, 0)
    assert set(pairs_of(probes_queue()).values()) == {1}
    assert len(pairs_of(probes_queue())) == 0  # taken above: 5 slots, once each
    assert redis_client.hlen(JOURNAL_KEY) == redis_client.hlen(GROUPS_KEY) == 0


def test_slots_a_dispatcher_killed_before_its_publish_claimed_are_sent_by_the_next(
    redis_client,
):
    now = timezone.now()
    ids = due_monitors(5, now)
    # What a dispatch does up to its publish; then it is killed (no finally runs).
    claimed, _ = monitors_claim(monitor_ids=ids, now_ms=to_ms(now), horizon=now + SECOND)
    assert Journal().record(claimed)

    sent, again = Collect(), Collect()
    dispatch_due(now=now + SECOND, horizon_seconds=1, publish=sent, journal=Journal(0))
    dispatch_due(now=now + 2 * SECOND, horizon_seconds=1, publish=again, journal=Journal(0))

    assert sorted(sent.slots) == sorted(claimed) and len(claimed) == 5
    assert again.slots == []
    assert redis_client.hlen(JOURNAL_KEY) == 0


def test_the_slots_of_a_dispatch_at_work_are_left_to_it(redis_client):
    now = timezone.now()
    ids = due_monitors(3, now)
    claimed, _ = monitors_claim(monitor_ids=ids, now_ms=to_ms(now), horizon=now + SECOND)
    Journal().record(claimed)  # just now: its dispatch is about to publish them

    sent = Collect()
    dispatch_due(now=now + SECOND, horizon_seconds=1, publish=sent, journal=Journal())

    assert sent.slots == []
    assert redis_client.hlen(JOURNAL_KEY) == 3


def test_a_batch_the_journal_sends_again_is_the_same_batch_and_checked_once(buffer, probes_queue):
    now = timezone.now()
    ids = due_monitors(3, now)
    claimed, _ = monitors_claim(monitor_ids=ids, now_ms=to_ms(now), horizon=now + SECOND)
    journal = Journal(0)
    journal.record(claimed)
    journal.sending(claimed)
    # RabbitMQ took the batch, and the dispatcher died before clearing its journal.
    probe_batches_publisher(batch_size=250)(claimed)

    report = dispatch_due(now=now + SECOND, horizon_seconds=1, journal=journal)

    first, again = probes_queue()
    assert report.republished == 3
    assert first.headers["id"] == again.headers["id"] == batch_task_id(region=LOCAL, slots=claimed)
    for message in (first, again):
        args, kwargs, _embed = message.decode()
        slots = message_decode(args[0], version=kwargs["v"], specs=kwargs["specs"])
        batch.checks_run_batch(slots=slots, batch_id=message.headers["id"])
    checked = Counter((r.monitor_id, to_ms(r.scheduled_at)) for r in buffered_results(buffer))
    assert sorted(checked) == sorted((s.monitor_id, s.scheduled_ms) for s in claimed)
    assert set(checked.values()) == {1}


def test_batch_ids_are_the_same_for_the_same_slots_and_region_only():
    slots = [Slot(1_000, 1, {}), Slot(1_000, 2, {})]

    same = batch_task_id(region=LOCAL, slots=list(reversed(slots)))

    assert batch_task_id(region=LOCAL, slots=slots) == same
    assert batch_task_id(region="eu", slots=slots) != same
    assert batch_task_id(region=LOCAL, slots=slots[:1]) != same


def test_slots_too_old_to_check_and_stray_group_marks_are_dropped(redis_client, caplog, settings):
    now_ms = to_ms(timezone.now())
    too_old = now_ms - 1000 * (settings.SENTINEL_DISPATCH_CATCH_UP_SECONDS + 1)
    journal = Journal(0)
    journal.record([Slot(too_old, 1, {"url": "http://127.0.0.1:9/"})])
    journal.record([Slot(now_ms, 2, {"url": "http://127.0.0.1:9/"})])
    redis_client.hset(GROUPS_KEY, f"3:{now_ms}", "a group whose slot was never recorded")

    with caplog.at_level(logging.WARNING, logger="monitors.journal"):
        [[left]] = journal.orphans()

    assert left.monitor_id == 2
    assert "1 slots claimed but never sent are too old to check now" in caplog.text
    assert redis_client.hlen(JOURNAL_KEY) == 1  # the one being sent, until it is
    assert redis_client.hlen(GROUPS_KEY) == 0


class BringsRedisBack(Collect):
    """A publisher that keeps the slots, and on its first call points Redis back at the
    tests' own: Redis came back between two chunks of one dispatch."""

    def __init__(self, settings, url: str):
        super().__init__()
        self.settings, self.url = settings, url

    def __call__(self, slots):
        super().__call__(slots)
        self.settings.REDIS_URL = self.url


def test_slots_recorded_after_redis_came_back_mid_dispatch_are_cleared_once_sent(
    redis_client, settings, monkeypatch
):
    monkeypatch.setattr(dispatch, "CLAIM_CHUNK", 2)  # three chunks of 2
    now = timezone.now()
    due_monitors(6, now)
    back = BringsRedisBack(settings, settings.REDIS_URL)
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # away for the first chunk's record

    report = dispatch_due(now=now, horizon_seconds=1, publish=back, journal=Journal())

    assert report.claimed == len(back.slots) == 6
    assert redis_client.hlen(JOURNAL_KEY) == redis_client.hlen(GROUPS_KEY) == 0
