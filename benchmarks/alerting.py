"""Alerting: how fast a confirmed outage reaches a channel, how quiet a flapping
target is, and whether a killed alert worker ever makes a notification arrive twice.

Runs a real Celery worker on the ``alerts`` queue and a webhook receiver on
127.0.0.1; results are stored the way ingest stores a batch (``rows_store``: the rows,
the live state and the notification rows in one transaction), with scheduled times
chosen by the benchmark (simulated time for the flapping run). Beside a pipeline they
go through the Redis buffer instead, for the pipeline's ingest to store.

Keys: ``alerting.notify_latency_p50_s`` / ``_p99_s`` / ``_max_s`` (confirming check
to arrival at the receiver; N outages confirmed in probe batches of 100, one batch
every 5 s, i.e. 20 new outages a second), ``alerting.notify_latency_burst_*`` (the same N
confirmed all at once: one worker's queue drains them),
``alerting.flapping_notifications`` (most notifications any channel got from a
target flipping every check for 10 minutes, confirm_failures=1, the worst case),
``alerting.flapping_notifications_confirm2`` (the default confirmation),
``alerting.flapping_settle_notifications`` (the "stable again" notice after),
``alerting.delivered`` / ``alerting.lost`` / ``alerting.resent_in_doubt`` /
``alerting.duplicates_in_doubt`` (repeats carrying the delivery id of a send in doubt,
which a receiver drops by it) / ``alerting.duplicates`` (any other repeat: the goal is
0) / ``alerting.interrupted`` (rows left in the retired at-most-once state: 0), after
kill -9 of the worker mid-send, a new worker, and the sweep after the lease.

``--beside-pipeline`` runs the latency part alone (``alerting.notify_latency_under_
pipeline_*``, the same 20 new outages a second); the pipeline scenario starts it this
way while its monitors run, after its measured window.

Run alone: ``python -m benchmarks.alerting [--quick] [--beside-pipeline] [--output
FILE]`` (uses your DATABASE_URL etc.), or with ``--bench-env`` beside a running pipeline
scenario (benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from benchmarks import runtime

USERNAME = "bench-alerting"
# The alerts worker's pool; e.g. BENCH_ALERTS_POOL="--pool threads -c 16" to compare.
POOL = os.environ.get("BENCH_ALERTS_POOL", "-c 4").split()


class Backlogged(ThreadingHTTPServer):
    # The receiver stands for the 1,000 endpoints of 1,000 channels, each with its own
    # accept queue. socketserver's default backlog of 5 makes concurrent senders see
    # dropped SYNs (a 1 s retransmit) and resets that no real endpoint would cause.
    request_queue_size = 1024


class Receiver:
    """Records (path, delivery id, arrival time); ``/slow/...`` answers after 0.3 s."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[str, str, float]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                arrived = time.monotonic()
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    receiver.arrivals.append(
                        (self.path, self.headers.get("X-Sentinel-Delivery", ""), arrived)
                    )
                if self.path.startswith("/slow/"):
                    time.sleep(0.3)
                try:
                    self.send_response(200)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the sender was killed mid-request: that is the point

            def log_message(self, *args: Any) -> None:
                pass

        self.server = Backlogged(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait(self, count: int, prefix: str, timeout: float) -> list[tuple[str, str, float]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = [a for a in self.arrivals if a[0].startswith(prefix)]
            if len(got) >= count:
                return got
            time.sleep(0.05)
        return [a for a in self.arrivals if a[0].startswith(prefix)]


def run(*, quick: bool, report: dict[str, object]) -> None:
    with _rig() as (owner, receiver, workers):
        count = 200 if quick else 1000
        _latency(owner, receiver, name="steady", monitors=count, batch_every_s=5.0, report=report)
        _latency(owner, receiver, name="burst", monitors=count, batch_every_s=0, report=report)
        _flapping(owner, receiver, report=report)
        workers.append(
            _redelivery(owner, receiver, workers[-1], count=40 if quick else 200, report=report)
        )


def run_beside_pipeline(*, quick: bool, report: dict[str, object]) -> None:
    """The latency of outages confirmed at 20 a second, while a pipeline runs."""
    with _rig() as (owner, receiver, _):
        count = 200 if quick else 1000
        # Through the buffer: the pipeline's ingest stores the results, moves the live
        # state and writes the notifications, so its queue is part of the latency.
        _latency(
            owner,
            receiver,
            name="under_pipeline",
            monitors=count,
            batch_every_s=5.0,
            report=report,
            through_buffer=True,
        )


@contextlib.contextmanager
def _rig() -> Iterator[tuple[Any, Receiver, list[Any]]]:
    """The benchmark's user, the webhook receiver and an alerts worker (the list of the
    workers started; every one is stopped at the end)."""
    import django

    django.setup()
    owner = _fresh_owner()
    receiver = Receiver()
    _purge_alerts_queue()
    workers = [_start_worker()]
    try:
        yield owner, receiver, workers
    finally:
        for worker in workers:
            runtime.stop(worker)
        receiver.server.shutdown()


def _fresh_owner() -> Any:
    from django.contrib.auth.models import User

    User.objects.filter(username=USERNAME).delete()  # cascades to monitors, channels, ...
    return User.objects.create(username=USERNAME)


def _purge_alerts_queue() -> None:
    from sentinel.celery import app

    # Leftovers of an earlier, interrupted run would be counted as this run's sends.
    with app.connection_for_write() as conn:
        queue = app.amqp.queues["alerts"].bind(conn.default_channel)
        queue.declare()
        queue.purge()


def _start_worker() -> Any:
    from sentinel.celery import app

    env = dict(os.environ, SENTINEL_ALLOWED_NETWORKS="127.0.0.0/8,::1/128")
    name = f"bench-alerts-{os.getpid()}-{time.monotonic_ns()}@%h"
    args = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "sentinel",
        "worker",
        "-Q",
        "alerts",
        *POOL,
        "-n",
        name,
        "--without-gossip",
        "--without-mingle",
        "-l",
        "WARNING",
    ]
    worker = runtime.spawn(args, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        replies = app.control.ping(timeout=0.5) or []
        if any(name.split("@")[0] in host for reply in replies for host in reply):
            runtime.stage(f"alerts worker up (pid {worker.pid})")
            return worker
    raise RuntimeError("the alerts worker did not start within 60 s")


def _setup_monitors(
    owner: Any, receiver: Receiver, prefix: str, count: int, **fields: Any
) -> list[Any]:
    """``count`` monitors, each with a down rule and its own webhook channel."""
    from django.utils import timezone

    from alerting.models import AlertRule, NotificationChannel
    from monitors.models import Monitor

    # Never due: beside a running pipeline, Beat would dispatch them, and real checks
    # of the unreachable URL would confirm outages before the benchmark's results do.
    later = timezone.now() + dt.timedelta(days=1)
    Monitor.objects.bulk_create(
        [
            Monitor(
                owner=owner,
                project_id=owner.personal_project.pk,
                name=f"{prefix}-{i}",
                url=f"http://127.0.0.1:9/{i}",
                status=Monitor.Status.UP,
                next_check_at=later,
                **fields,
            )
            for i in range(count)
        ]
    )
    monitors = list(Monitor.objects.filter(owner=owner, name__startswith=f"{prefix}-"))
    NotificationChannel.objects.bulk_create(
        [
            NotificationChannel(
                owner=owner,
                project_id=owner.personal_project.pk,
                name=f"{prefix}-{m.pk}",
                kind="webhook",
                config={"url": receiver.url(f"/{prefix}/{m.pk}"), "secret": "x"},
            )
            for m in monitors
        ]
    )
    channels = list(
        NotificationChannel.objects.filter(
            owner=owner, project_id=owner.personal_project.pk, name__startswith=f"{prefix}-"
        )
    )
    AlertRule.objects.bulk_create([AlertRule(monitor=m) for m in monitors])
    rules = {r.monitor_id: r.pk for r in AlertRule.objects.filter(monitor__in=monitors)}
    by_name = {c.name: c.pk for c in channels}
    AlertRule.channels.through.objects.bulk_create(
        [
            AlertRule.channels.through(
                alertrule_id=rules[m.pk], notificationchannel_id=by_name[f"{prefix}-{m.pk}"]
            )
            for m in monitors
        ]
    )
    return monitors


def _result(monitor_id: int, at: dt.datetime, ok: bool) -> Any:
    from telemetry.records import CheckResult, FailureKind

    return CheckResult(
        monitor_id=monitor_id,
        scheduled_at=at,
        started_at=at,
        duration_ms=30,
        ok=ok,
        status_code=200 if ok else 503,
        failure=None if ok else FailureKind.STATUS,
        error="" if ok else "HTTP 503",
    )


def _probe_batch(results: list[Any], *, through_buffer: bool = False) -> None:
    """Results on their way to alerting. ``through_buffer``: pushed to the Redis buffer
    as a probe worker pushes them, for a running ingest (the pipeline's) to store, apply
    and alert on; otherwise stored as ingest stores a batch, in this process (the
    transaction that applies the live state and writes the notification rows)."""
    from telemetry.buffer import buffer_push
    from telemetry.ingest import rows_store

    if through_buffer:
        buffer_push(results=results)
    else:
        rows_store(rows=[result.to_wire() for result in results])


def _latency(
    owner: Any,
    receiver: Receiver,
    *,
    name: str,
    monitors: int,
    batch_every_s: float,
    report: dict[str, object],
    through_buffer: bool = False,
) -> None:
    """``monitors`` outages confirmed in probe batches of 100, one batch every
    ``batch_every_s`` seconds (0: all at once); ``through_buffer`` see ``_probe_batch``."""
    from django.utils import timezone

    runtime.stage(
        f"latency ({name}): {monitors} monitors confirmed down, a batch of 100 every "
        f"{batch_every_s} s (confirm_failures=2)"
    )
    targets = _setup_monitors(owner, receiver, name, monitors)
    now = timezone.now()
    for chunk in _chunks(targets, 500):
        _probe_batch([_result(m.pk, now, False) for m in chunk], through_buffer=through_buffer)
    confirmed_at: dict[str, float] = {}
    later = now + dt.timedelta(seconds=60)
    next_batch = time.monotonic()
    for chunk in _chunks(targets, 100):
        time.sleep(max(next_batch - time.monotonic(), 0))
        next_batch += batch_every_s
        started = time.monotonic()
        _probe_batch([_result(m.pk, later, False) for m in chunk], through_buffer=through_buffer)
        confirmed_at.update({f"/{name}/{m.pk}": started for m in chunk})
    arrivals = receiver.wait(monitors, f"/{name}/", timeout=300)
    latencies = [at - confirmed_at[path] for path, _, at in arrivals]
    key = "alerting.notify_latency" if name == "steady" else f"alerting.notify_latency_{name}"
    report[f"{key}_p50_s"] = round(runtime.percentile(latencies, 0.5), 3)
    report[f"{key}_p99_s"] = round(runtime.percentile(latencies, 0.99), 3)
    report[f"{key}_max_s"] = round(max(latencies, default=float("nan")), 3)
    report[f"{key}_delivered"] = f"{len(arrivals)}/{monitors}"
    runtime.stage(
        f"latency ({name}): {len(arrivals)}/{monitors} delivered; "
        f"p50 {report[f'{key}_p50_s']} s, p99 {report[f'{key}_p99_s']} s"
    )


def _flapping(owner: Any, receiver: Receiver, *, report: dict[str, object]) -> None:
    from django.conf import settings
    from django.utils import timezone

    from alerting.services import alerts_sweep

    # Simulated time in the past, so the sweep's "now" never reaches real claims.
    start = timezone.now() - dt.timedelta(hours=2)
    counts: dict[int, int] = {}
    for confirm in (1, 2):
        [monitor] = _setup_monitors(
            owner, receiver, f"flap{confirm}", 1, confirm_failures=confirm, interval_seconds=30
        )
        for i in range(20):  # every 30 s for 10 minutes, failing and passing in turn
            _probe_batch([_result(monitor.pk, start + dt.timedelta(seconds=30 * i), i % 2 == 1)])
        time.sleep(2)
        counts[confirm] = len(receiver.wait(99, f"/flap{confirm}/", timeout=0))
        runtime.stage(f"flapping, confirm_failures={confirm}: {counts[confirm]} notifications")
    settle = dt.timedelta(minutes=settings.SENTINEL_FLAP_SETTLE_MINUTES + 1)
    alerts_sweep(now=start + dt.timedelta(minutes=10) + settle)
    time.sleep(2)
    after = len(receiver.wait(99, "/flap1/", timeout=0)) - counts[1]
    report["alerting.flapping_notifications"] = counts[1]
    report["alerting.flapping_notifications_confirm2"] = counts[2]
    report["alerting.flapping_settle_notifications"] = after
    runtime.stage(f"flapping: {after} 'stable again' notice(s) after it stopped")


def _redelivery(
    owner: Any, receiver: Receiver, worker: Any, *, count: int, report: dict[str, object]
) -> Any:
    from django.conf import settings
    from django.utils import timezone

    from alerting.models import Notification
    from alerting.services import alerts_sweep

    runtime.stage(f"redelivery: {count} slow sends, kill -9 of the worker mid-send, new worker")
    targets = _setup_monitors(owner, receiver, "slow", count, confirm_failures=1)
    _probe_batch([_result(m.pk, timezone.now(), False) for m in targets])
    receiver.wait(6, "/slow/", timeout=30)
    os.killpg(worker.pid, signal.SIGKILL)
    runtime.stop(worker)
    runtime.stage("redelivery: worker killed; starting another")
    worker = _start_worker()
    notifications = Notification.objects.filter(monitor__in=targets)
    deadline = time.monotonic() + 120
    while notifications.filter(status__in=["pending", "retrying"]).exists():
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    time.sleep(1)
    lease = dt.timedelta(seconds=2 * settings.SENTINEL_NOTIFY_TIMEOUT_SECONDS + 61)
    # What the sweep does after the lease: the sends the killed worker left in doubt
    # are handed out again, with the same delivery ids, to the new worker.
    swept = alerts_sweep(now=timezone.now() + lease)
    deadline = time.monotonic() + 60
    while notifications.exclude(status__in=["sent", "failed"]).exists():
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    time.sleep(1)
    in_doubt = {
        str(pk) for pk in notifications.filter(resends_in_doubt__gt=0).values_list("pk", flat=True)
    }
    per_delivery = Counter(d for p, d, _ in receiver.arrivals if p.startswith("/slow/"))
    repeats = {d: n - 1 for d, n in per_delivery.items() if n > 1}
    report["alerting.duplicates"] = sum(n for d, n in repeats.items() if d not in in_doubt)
    report["alerting.duplicates_in_doubt"] = sum(n for d, n in repeats.items() if d in in_doubt)
    report["alerting.resent_in_doubt"] = swept["resent_in_doubt"]
    report["alerting.delivered"] = f"{len(per_delivery)}/{count}"
    report["alerting.lost"] = count - len(per_delivery)
    report["alerting.interrupted"] = notifications.filter(status="interrupted").count()
    runtime.stage(
        f"redelivery: {len(per_delivery)}/{count} arrived, {report['alerting.lost']} lost, "
        f"{report['alerting.resent_in_doubt']} sent again after the lease (in doubt), "
        f"{report['alerting.duplicates_in_doubt']} of those arrived twice with the same "
        f"delivery id, {report['alerting.duplicates']} duplicates otherwise"
    )
    return worker


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="the alerting scenario on its own")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--bench-env", action="store_true", help="the harness's database, Redis db and vhost"
    )
    parser.add_argument(
        "--beside-pipeline", action="store_true", help="only the latency, as a pipeline runs"
    )
    parser.add_argument("--output", type=Path, help="write the figures there, not to stdout")
    args = parser.parse_args(argv)
    if args.bench_env:
        # The harness's database, Redis db and vhost, without its lock: to measure
        # alerting while `python -m benchmarks --only pipeline` runs 100,000 monitors.
        os.environ.update(runtime.bench_environment(dict(os.environ)))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sentinel.settings")
    os.environ["SENTINEL_ALLOWED_NETWORKS"] = "127.0.0.0/8,::1/128"
    # Stopped by the pipeline scenario (a timeout): stop the alerts worker too.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    figures: dict[str, object] = {}
    try:
        scenario = run_beside_pipeline if args.beside_pipeline else run
        scenario(quick=args.quick, report=figures)
    finally:
        runtime.stop_all()
    text = json.dumps(figures, indent=2)
    if args.output:
        args.output.write_text(text + "\n")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
