"""Regions end to end on one machine: real remote-region probe workers (RabbitMQ only,
each with its own RabbitMQ user and its own loopback source address) check a target
that answers by the caller's address; their results come back over RabbitMQ, the
central consumer checks them against the slots handed out, ingest stores them and
moves the live state.

The region users are created in this test's vhost by ``manage.py region_users
--apply`` and deleted afterwards; rabbitmqctl is part of the RabbitMQ server that
``bin/ensure-system-packages`` installs.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import amqp
import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone
from kombu import Connection

from core.broker import broker_queues_ensure, queue_depth
from core.regions import RESULTS_QUEUE, broker_queue, probe_queue
from monitors.dispatch import PROBE_TASK, dispatch_due
from monitors.models import Incident, Monitor
from monitors.regions import regions_status
from monitors.tasks import regions_accept_results
from sentinel.celery import app
from telemetry.buffer import buffer_depth
from telemetry.ingest import ingest_batch
from tests.factories import MonitorFactory
from tests.telemetry.conftest import buffer  # noqa: F401 (fixture)

ROOT = Path(__file__).resolve().parents[2]
REGIONS = {"t1": "127.0.0.2", "t2": "127.0.0.3", "t3": "127.0.0.4"}
PREFIX = f"sentinel-test-{os.getpid()}-"

pytestmark = [
    pytest.mark.skipif(shutil.which("rabbitmqctl") is None, reason="needs rabbitmqctl"),
    pytest.mark.usefixtures("telemetry_tables", "buffer"),
]


def broker_url(user: str, password: str) -> str:
    parts = settings.CELERY_BROKER_URL.rsplit("@", 1)
    return f"amqp://{user}:{password}@{parts[1]}"


@pytest.fixture
def region_queues(settings) -> Iterator[None]:
    """The three regions' queues (and results) declared by the central site, empty."""
    settings.SENTINEL_REGIONS = list(REGIONS)
    names = [*(probe_queue(r) for r in REGIONS), RESULTS_QUEUE]
    for name in names:
        queue = broker_queue(name, dead_letter_exchange=settings.SENTINEL_DEAD_LETTER_EXCHANGE)
        app.amqp.queues.select_add(queue)
    broker_queues_ensure(app=app)
    purge(names)
    yield
    purge(names)


def purge(names: list[str]) -> None:
    with Connection(settings.CELERY_BROKER_URL) as conn:
        for name in names:
            app.amqp.queues[name].bind(conn.default_channel).purge()


@pytest.fixture
def region_users(region_queues) -> Iterator[dict[str, str]]:
    """A RabbitMQ user per region, made by the management command: name -> broker URL."""
    out = io.StringIO()
    call_command("region_users", *_regions_args(), "--prefix", PREFIX, "--apply", stdout=out)
    urls = {}
    for line in out.getvalue().splitlines():
        words = line.split()
        if words[1] == "add_user":
            urls[words[2].removeprefix(PREFIX)] = broker_url(words[2], words[3])
    try:
        yield urls
    finally:
        call_command(
            "region_users", *_regions_args(), "--prefix", PREFIX, "--apply", "--delete",
            stdout=io.StringIO(),
        )  # fmt: skip


def _regions_args() -> list[str]:
    return [arg for region in REGIONS for arg in ("--region", region)]


@pytest.fixture
def region_workers(region_users, tmp_path) -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    """Probe workers of regions t1 and t2 with only broker settings (t3 has none)."""
    workers = {}
    for region in ("t1", "t2"):
        environment = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DATABASE_", "REDIS_", "CELERY_"))
        }
        environment.update(
            SENTINEL_ROLE="probe",
            SENTINEL_REGION=region,
            SENTINEL_SOURCE_ADDRESS=REGIONS[region],
            SENTINEL_ALLOW_PRIVATE_TARGETS="true",
            CELERY_BROKER_URL=region_users[region],
            # Nothing listens there: a remote region needs no Redis.
            REDIS_URL="redis://127.0.0.1:1/0",
            DJANGO_SETTINGS_MODULE="sentinel.settings",
        )
        log = (tmp_path / f"{region}.log").open("w")
        workers[region] = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "sentinel", "worker",
                "--queues", probe_queue(region), "--pool", "threads", "--concurrency", "4",
                "--without-gossip", "--without-mingle", "--without-heartbeat",
                "--hostname", f"{region}-{os.getpid()}@%h", "--loglevel", "INFO",
            ],
            cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        yield workers
    finally:
        for worker in workers.values():
            worker.terminate()
        for worker in workers.values():
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()


def accept_results(timeout: float) -> int:
    """Run the central consumer on what the results queue holds (the task as a worker
    of the central site runs it); return how many messages it took."""
    taken = 0
    with Connection(settings.CELERY_BROKER_URL) as conn:
        queue = conn.SimpleQueue(app.amqp.queues[RESULTS_QUEUE])  # type: ignore[arg-type]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                message = queue.get(timeout=0.5)
            except queue.Empty:
                continue
            _args, kwargs, _embed = message.decode()
            regions_accept_results.run(**kwargs)
            message.ack()
            taken += 1
        queue.close()
    return taken


def test_regions_confirm_a_failure_across_their_workers_and_a_silent_region_downs_nothing(
    region_workers, target, settings
):
    settings.SENTINEL_ALLOW_PRIVATE_TARGETS = True
    now = timezone.now()
    seen_by_two = MonitorFactory(
        url=target.url("/caller/127.0.0.2,127.0.0.3"), confirm_failures=1, next_check_at=now
    )
    seen_by_one = MonitorFactory(
        url=target.url("/caller/127.0.0.2"), confirm_failures=1, next_check_at=now
    )
    Monitor.objects.exclude(pk__in=[seen_by_two.pk, seen_by_one.pk]).update(enabled=False)

    report = dispatch_due(now=now)
    assert {slot.monitor_id for slot in report.slots} == {seen_by_two.pk, seen_by_one.pk}
    # Every region's queue got the slots, t3's stays there: it has no worker.
    time.sleep(1)

    deadline = time.monotonic() + 60
    stored = 0
    while time.monotonic() < deadline and stored < 4:
        accept_results(timeout=2)
        stored += ingest_batch(consumer="test").stored

    # t1 and t2 failed the first monitor's slot: 2 of 3, down, named. The second
    # monitor failed from t1 only, passed from t2, and t3 is silent: not down (its slot
    # passes at its deadline, when the monitor's next results come).
    seen_by_two.refresh_from_db()
    seen_by_one.refresh_from_db()
    assert stored == 4
    assert seen_by_two.status == Monitor.Status.DOWN
    assert Incident.objects.get(monitor=seen_by_two).regions == "t1,t2"
    assert seen_by_one.status != Monitor.Status.DOWN
    assert not Incident.objects.filter(monitor=seen_by_one).exists()
    assert buffer_depth() == 0
    status = {region.name: region for region in regions_status()}
    assert not status["t1"].silent and status["t1"].workers == 1
    assert status["t3"].silent and status["t3"].workers == 0 and status["t3"].queued
    assert queue_depth(app=app, name=probe_queue("t3"))[0] >= 1


def test_a_region_user_can_neither_read_another_regions_work_nor_store_its_slots(
    region_users,
):
    t1 = region_users["t1"]
    with Connection(t1) as conn:
        channel: Any = conn.channel()
        with pytest.raises(amqp.exceptions.AccessRefused):
            channel.basic_get(probe_queue("t2"))
    with Connection(t1) as conn:
        channel = conn.channel()
        with pytest.raises(amqp.exceptions.AccessRefused):
            channel.queue_delete(probe_queue("t1"))
    with Connection(t1) as conn:
        channel = conn.channel()
        with pytest.raises(amqp.exceptions.AccessRefused):
            channel.basic_publish(amqp.Message(b"{}"), exchange="ingest", routing_key="ingest")
            channel.basic_get(probe_queue("t1"))  # the refusal arrives on the next call

    # What t1 may do, publish results, does not let it store a slot it was not sent:
    # t2's slot with a made-up token, and t2's region name, are refused.
    monitor = MonitorFactory()
    slot_ms = int(dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC).timestamp() * 1000)
    row = [monitor.pk, slot_ms, slot_ms, 5, False, 503, "status", "HTTP 503", *[None] * 5, "", "t2"]
    with Connection(t1) as conn:
        regional = conn.Producer()
        regional.publish(
            {"region": "t2", "slots": [[monitor.pk, slot_ms]], "token": "0" * 64, "rows": [row]},
            exchange=RESULTS_QUEUE,
            routing_key=RESULTS_QUEUE,
            serializer="json",
            headers={"task": "monitors.regions.accept_results"},
        )
    with Connection(settings.CELERY_BROKER_URL) as conn:
        queue = conn.SimpleQueue(app.amqp.queues[RESULTS_QUEUE])  # type: ignore[arg-type]
        message = queue.get(timeout=5)
        regions_accept_results.run(**message.payload)
        message.ack()
        queue.close()

    assert buffer_depth() == 0


def test_the_dispatcher_hands_a_slot_to_each_chosen_region_with_its_token(region_queues):
    now = timezone.now()
    chosen = MonitorFactory(regions=["t1", "t3"], next_check_at=now)
    Monitor.objects.exclude(pk=chosen.pk).update(enabled=False)

    dispatch_due(now=now)

    with Connection(settings.CELERY_BROKER_URL) as conn:
        got = {}
        for region in REGIONS:
            queue = conn.SimpleQueue(app.amqp.queues[probe_queue(region)])  # type: ignore[arg-type]
            try:
                message = queue.get(timeout=2)
                got[region] = message
                message.ack()
            except queue.Empty:
                pass
            queue.close()
    assert set(got) == {"t1", "t3"}
    for region, message in got.items():
        args, kwargs, _ = message.decode()
        assert message.headers["task"] == PROBE_TASK
        assert args[0][0][0] == chosen.pk and kwargs["region"] == region
        assert len(kwargs["token"]) == 64
