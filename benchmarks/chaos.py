"""Scenario ``chaos``: outage drills against a running stack.

The drill starts its own MariaDB, Redis and RabbitMQ (``benchmarks._private_services``:
free loopback ports, temporary data directories, never the machine's services), migrates
the private database once, and runs the stack as the Procfile does: a probe worker
(``SENTINEL_ROLE=probe``, no database), the worker that dispatches, ingests and
delivers, Beat (``sentinel.beat:Scheduler``) and the ``manage.py ingest`` loop, with
their logs in the temporary directory. 200 monitors at a 30 s interval check a target
server on loopback; every monitor has a down rule whose webhook goes to a receiver that
records each delivery by its ``X-Sentinel-Delivery`` id.

Then the drills, one at a time, back to back on the one stack; each drill's window (from
its fault to the next drill's, the first from the warm-up, the last to the end of the
wait for alerts) is accounted separately:

| drill | fault |
| --- | --- |
| ``redis_stopped`` | Redis stopped 30 s |
| ``redis_killed`` | Redis ``kill -9``, restarted 5 s later from its append-only file |
| ``mariadb_stopped`` | MariaDB stopped 60 s |
| ``rabbitmq_stopped`` | RabbitMQ stopped 30 s |
| ``probe_worker_killed`` | ``kill -9`` of the probe worker, restarted after 10 s |
| ``ingest_killed`` | ``kill -9`` of the ingest loop, restarted after 10 s |
| ``worker_killed`` | ``kill -9`` of the dispatch/ingest/alerts worker (at a dispatch), after 10 s |
| ``beat_killed`` | ``kill -9`` of Beat (across a dispatch tick), restarted after 10 s |

``--quick`` runs ``mariadb_stopped`` (30 s) and ``worker_killed``. As each fault begins,
five monitors of the drill's own see their target fail for 80-90 s (three slots), so
each should bring one down and one up alert. A supervisor restarts a stack process that
exits by itself (counted as ``process_exits``).

Per drill (``chaos.<drill>.*``):

- ``results_expected``: every monitor's phase-aligned slots inside the window;
  ``results_stored``: those with a row in ``check_result``; ``results_skipped_by_design``:
  slots due while Beat or the broker was away that the catch-up replaced (a later slot
  of the monitor was stored within the catch-up bound; see ``explain_missing``);
  ``results_missing``: the rest, lost. ``results_duplicated``: extra copies of a slot
  on the result stream (the primary key folds them into one row), of which
  ``checks_duplicated`` were checked twice (a different start time) rather than one
  result pushed twice. ``results_unexpected``: rows off the slot grid.
  ``checks_late_over_5s`` and ``check_lag_max_s``: stored slots checked late.
- ``alerts_expected``: a down and an up alert for each outage of the drill whose
  failing slots were checked (at least ``confirm_failures`` of them not skipped by
  design); ``alerts_sent``: those that arrived; ``alerts_lost``; duplicates split into
  ``alerts_duplicated_in_doubt`` (a repeat of a delivery id the system re-sent because
  its send was in doubt: the receiver drops it by the id) and ``alerts_duplicated``
  (any other repeat: a second delivery id for the same event, or a repeat of an id
  not in doubt); ``alerts_unexpected``: down/up alerts of monitors that had no outage.
- ``recovery_s``: from the service's (or process's) return until the spool is empty
  and the buffer holds nothing older than 5 s (``None``: not within 120 s).
- ``tracebacks`` and ``unreachable_lines``: lines of the processes' logs written in
  the drill's window, per process (the console shows each traceback's exception line).

Totals ``chaos.results_lost``, ``chaos.alerts_lost``, ``chaos.alerts_duplicated`` and
``chaos.recovery_max_s`` carry the goals.

The harness runs the drill in a child process (``python -m benchmarks.chaos --output
F``) so that its Django settings point at the private services from the start. Run
alone: ``python -m benchmarks.chaos [--quick] [--keep] [--drills a,b]`` (``--keep``
leaves the temporary directory with the logs; ``--drills`` runs only those drills).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from benchmarks import runtime
from benchmarks._private_services import HOST, PrivateService, private_services

INTERVAL_S = 30
TIMEOUT_S = 5
MONITORS = 200
OUTAGES_PER_DRILL = 5
# Each outage starts 2 s before a slot of its monitor, so these fail three slots (at
# +2, +32 and +62 s) and end before the fourth (+92 s) with room for late checks.
OUTAGE_SECONDS = (80, 83, 86, 88, 90)
OUTAGE_LEAD_MS = 2_000
CONFIRM_FAILURES = 2  # the monitors' default
# A slot due while Beat or the broker was away may be replaced by one catch-up slot
# within the next dispatch (a minute) plus the dispatcher's grace.
CATCH_UP_MS = 65_000
PRE_S = 3  # before each fault
TAIL_S = 20  # after the return, at least (redeliveries, late batches)
RECOVERY_TIMEOUT_S = 120
BACKLOG_AGE_S = 5.0  # the buffer holds nothing older than this: caught up
LATE_S = 5.0  # a check that started this long after its slot is late
# At most this long after the last outage ends, for alerts: its up alert (a slot and a
# delivery) and a send in doubt handed out again after its lease (81 s by default).
SETTLE_AFTER_OUTAGES_S = 120
OWNER = "bench-chaos"
ROLES = ("probes", "worker", "beat", "ingest")
TRACEBACK = "Traceback (most recent call last)"


@dataclass(frozen=True)
class Drill:
    name: str
    target: str  # a service ("redis", "mariadb", "rabbitmq") or a role of ROLES
    action: str  # "stop" (clean shutdown) or "kill" (kill -9)
    away_s: float
    # Slots due while it is away may be skipped by design (Beat's missed tick, the
    # broker's expired batches), provided the monitor is caught up after.
    skips_by_design: bool = False
    # Seconds into the minute to start the fault at (None: at once): a kill of the
    # dispatching worker at a dispatch, of Beat across a tick.
    at_second: float | None = None
    # After the return, at least: MariaDB's is a dispatch horizon and its grace, so the
    # slots a dispatch failed to hand out while it was away are due before the next fault.
    tail_s: float = TAIL_S


DRILLS = (
    Drill("redis_stopped", "redis", "stop", 30),
    Drill("redis_killed", "redis", "kill", 5),
    Drill("mariadb_stopped", "mariadb", "stop", 60, tail_s=75),
    Drill("rabbitmq_stopped", "rabbitmq", "stop", 30, skips_by_design=True),
    Drill("probe_worker_killed", "probes", "kill", 10),
    Drill("ingest_killed", "ingest", "kill", 10),
    # Back to back: the second waits least for its moment after the first.
    Drill("worker_killed", "worker", "kill", 10, at_second=0.3),
    Drill("beat_killed", "beat", "kill", 10, skips_by_design=True, at_second=55.0),
)
QUICK_DRILLS = (
    # Away across a dispatch tick, as the full drill's minute always is.
    Drill("mariadb_stopped", "mariadb", "stop", 30, at_second=45.0, tail_s=75),
    Drill("worker_killed", "worker", "kill", 10, at_second=0.3),
)


# --- accounting (pure) ------------------------------------------------------------

Slot = tuple[int, int]  # (monitor id, scheduled epoch ms)


def expected_slots(
    *, monitor_ids: Iterable[int], interval_s: int, start_ms: int, end_ms: int
) -> set[Slot]:
    """Every phase-aligned slot (``monitors.dispatch.monitor_phase_ms``) of each monitor
    in ``[start_ms, end_ms)``."""
    from monitors.dispatch import align_up, monitor_phase_ms

    period = interval_s * 1000
    slots: set[Slot] = set()
    for pk in monitor_ids:
        phase = monitor_phase_ms(monitor_id=pk, interval_seconds=interval_s)
        slot = align_up(start_ms, period_ms=period, phase_ms=phase)
        while slot < end_ms:
            slots.add((pk, slot))
            slot += period
    return slots


@dataclass(frozen=True)
class Missing:
    lost: set[Slot]
    skipped_by_design: set[Slot]


def explain_missing(
    missing: Iterable[Slot],
    *,
    stored_by_monitor: Mapping[int, list[int]],
    away: tuple[int, int] | None,
    interval_ms: int,
    catch_up_ms: int = CATCH_UP_MS,
) -> Missing:
    """Sort missing slots into lost and skipped by design.

    A slot is skipped by design when ``away`` is given (Beat or the broker was away
    from ``away[0]`` to ``away[1]``, epoch ms), the slot was due between then and the
    catch-up bound (``away[1] + catch_up_ms``), and its monitor was caught up: a later
    slot of it is stored by one interval after that bound. Any other missing slot is
    lost. ``stored_by_monitor``: each monitor's stored slots, all of them (the catch-up
    may lie after the drill's window).
    """
    lost: set[Slot] = set()
    skipped: set[Slot] = set()
    for monitor_id, slot in missing:
        if away is not None and away[0] <= slot <= away[1] + catch_up_ms:
            limit = away[1] + catch_up_ms + interval_ms
            later = stored_by_monitor.get(monitor_id, [])
            if any(slot < stored <= limit for stored in later):
                skipped.add((monitor_id, slot))
                continue
        lost.add((monitor_id, slot))
    return Missing(lost, skipped)


@dataclass(frozen=True)
class Duplicates:
    copies: int  # extra copies of slots on the stream
    checked_twice: int  # of which a different check (another start time)


def stream_duplicates(streamed: Iterable[tuple[int, int, int]], *, slots: set[Slot]) -> Duplicates:
    """Extra copies of ``slots`` among ``streamed`` results ``(monitor, scheduled_ms,
    started_ms)``: a copy with a start time already seen is one result pushed twice (a
    spool replay, a retried push), one with a new start time a second check."""
    starts: dict[Slot, list[int]] = defaultdict(list)
    for monitor_id, scheduled, started in streamed:
        if (monitor_id, scheduled) in slots:
            starts[(monitor_id, scheduled)].append(started)
    copies = sum(len(s) - 1 for s in starts.values())
    checked_twice = sum(len(set(s)) - 1 for s in starts.values())
    return Duplicates(copies, checked_twice)


@dataclass(frozen=True)
class Outage:
    monitor_id: int
    start_ms: int
    end_ms: int


def outage_slots(outage: Outage, *, interval_s: int) -> list[int]:
    """The monitor's slots that fall inside the outage (its target fails them)."""
    return sorted(
        slot
        for _, slot in expected_slots(
            monitor_ids=[outage.monitor_id],
            interval_s=interval_s,
            start_ms=outage.start_ms,
            end_ms=outage.end_ms,
        )
    )


def expected_alerts(
    outages: Iterable[Outage],
    *,
    skipped: set[Slot],
    interval_s: int,
    confirm_failures: int = CONFIRM_FAILURES,
) -> set[tuple[int, str]]:
    """``(monitor, "down")`` and ``(monitor, "up")`` for each outage with at least
    ``confirm_failures`` failing slots that were not skipped by design."""
    alerts: set[tuple[int, str]] = set()
    for outage in outages:
        checked = [
            s
            for s in outage_slots(outage, interval_s=interval_s)
            if (outage.monitor_id, s) not in skipped
        ]
        if len(checked) >= confirm_failures:
            alerts |= {(outage.monitor_id, "down"), (outage.monitor_id, "up")}
    return alerts


@dataclass(frozen=True)
class Arrival:
    delivery_id: str
    event: str
    monitor_id: int
    at: float  # epoch seconds


@dataclass(frozen=True)
class AlertVerdict:
    expected: int
    sent: int
    lost: int
    duplicated_in_doubt: int
    duplicated: int
    unexpected: int


def account_alerts(
    *,
    expected: set[tuple[int, str]],
    arrivals: Iterable[Arrival],
    monitors: set[int],
    in_doubt: set[str],
) -> AlertVerdict:
    """Judge the down/up alerts of ``monitors`` (a drill's outage monitors).

    Per (monitor, event): the first arrival counts as sent; a repeat of a delivery id
    in ``in_doubt`` (sends the system handed out again after a worker died mid-send)
    is a duplicate in doubt, which the receiver drops by its id; any other repeat (the
    same id not in doubt, or a second delivery id for the same event) is a duplicate.
    Arrivals for an event not in ``expected`` are unexpected.
    """
    by_key: dict[tuple[int, str], Counter[str]] = defaultdict(Counter)
    for arrival in arrivals:
        if arrival.monitor_id in monitors and arrival.event in ("down", "up"):
            by_key[(arrival.monitor_id, arrival.event)][arrival.delivery_id] += 1
    in_doubt_repeats = other_repeats = unexpected = 0
    for key, ids in by_key.items():
        if key not in expected:
            unexpected += sum(ids.values())
            continue
        other_repeats += len(ids) - 1  # a second delivery id for one event
        for delivery_id, count in ids.items():
            if delivery_id in in_doubt:
                in_doubt_repeats += count - 1
            else:
                other_repeats += count - 1
    sent = len(expected & by_key.keys())
    return AlertVerdict(
        expected=len(expected),
        sent=sent,
        lost=len(expected) - sent,
        duplicated_in_doubt=in_doubt_repeats,
        duplicated=other_repeats,
        unexpected=unexpected,
    )


Mark = tuple[int, dict[str, int]]  # (epoch ms, each log's size then)


def drill_windows(marks: list[Mark]) -> list[tuple[Mark, Mark]]:
    """Each drill's window from ``marks``: the warm-up's end, each fault, the run's end.

    A drill's window runs from its fault to the next one's, so what a fault leaves
    behind counts against it; the first starts at the warm-up's end (the seconds
    before its fault are a baseline), the last ends with the run.
    """
    starts = [marks[0], *marks[2:-1]]
    return list(zip(starts, marks[2:], strict=True))


def log_counts(text: str) -> tuple[int, int]:
    """(traceback headers, "is unreachable" lines) in a stretch of a log."""
    lines = text.splitlines()
    return (
        sum(TRACEBACK in line for line in lines),
        sum("is unreachable" in line for line in lines),
    )


def traceback_errors(text: str) -> Counter[str]:
    """The exception line that ends each traceback in a stretch of a log (the first
    line after its header that is not indented), to say where tracebacks come from."""
    errors: Counter[str] = Counter()
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if TRACEBACK not in line:
            continue
        ending = next(
            (later for later in lines[index + 1 :] if later and not later[0].isspace()), "?"
        )
        errors[ending[:160]] += 1
    return errors


# --- loopback servers: the targets and the webhook receiver ------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


class Targets:
    """``GET /c/<n>``: 200, or 503 while path ``n`` is in an outage; counts requests."""

    def __init__(self) -> None:
        self.outages: dict[int, tuple[float, float]] = {}  # path -> (start, end) epoch s
        self.requests: Counter[int] = Counter()
        targets = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                now = time.time()
                try:
                    n = int(self.path.rsplit("/", 1)[1])
                except ValueError:
                    n = -1
                targets.requests[n] += 1
                start, end = targets.outages.get(n, (0.0, 0.0))
                status = 503 if start <= now < end else 200
                body = b"chaos target" if status == 200 else b"failing on purpose"
                with contextlib.suppress(OSError):
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = _Server((HOST, 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, n: int) -> str:
        return f"http://{HOST}:{self.port}/c/{n}"


class Receiver:
    """Webhook deliveries: ``Arrival`` per POST (delivery id, event, monitor)."""

    def __init__(self) -> None:
        self.arrivals: list[Arrival] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with contextlib.suppress(ValueError):
                    payload = json.loads(body)
                    monitor = payload.get("monitor") or {}
                    receiver.arrivals.append(
                        Arrival(
                            self.headers.get("X-Sentinel-Delivery", ""),
                            str(payload.get("event", "")),
                            int(monitor.get("id") or 0),
                            time.time(),
                        )
                    )
                with contextlib.suppress(OSError):
                    self.send_response(200)
                    self.send_header("Content-Length", "0")
                    self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = _Server((HOST, 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


# --- the stack ----------------------------------------------------------------------


class Stack:
    """The Procfile's processes, each in its own process group with its log in
    ``directory``; a supervisor thread restarts one that exits by itself."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.held: set[str] = set()  # killed on purpose: not restarted by the supervisor
        self.exits: list[tuple[float, str, int]] = []  # (when, role, exit code)
        self.lock = threading.Lock()
        self._stopping = threading.Event()
        self._supervisor = threading.Thread(target=self._supervise, daemon=True)

    def command(self, role: str) -> tuple[list[str], dict[str, str]]:
        celery = [sys.executable, "-m", "celery", "-A", "sentinel"]
        env = dict(os.environ)
        if role == "probes":
            return [
                *celery, "worker", "--queues", "probes", "--pool", "threads",
                "--concurrency", "16", "--hostname", "probes-chaos@%h", "--loglevel", "INFO",
            ], runtime.probe_worker_environment()  # fmt: skip
        if role == "worker":
            return [
                *celery, "worker", "--queues", "dispatch,ingest,alerts,maintenance,results",
                "--concurrency", "2", "--hostname", "worker-chaos@%h", "--loglevel", "INFO",
            ], env  # fmt: skip
        if role == "beat":
            return [
                *celery, "beat", "--scheduler", "sentinel.beat:Scheduler",
                "--schedule", str(self.directory / "celerybeat-schedule"),
                "--pidfile", str(self.directory / "celerybeat.pid"), "--loglevel", "INFO",
            ], env  # fmt: skip
        return runtime.manage_args("ingest"), env

    def log(self, role: str) -> Path:
        return self.directory / f"{role}.log"

    def start(self, role: str) -> None:
        command, env = self.command(role)
        (self.directory / "celerybeat.pid").unlink(missing_ok=True)
        with self.log(role).open("ab") as out:
            child = subprocess.Popen(
                command,
                cwd=runtime.ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        with self.lock:
            self.processes[role] = child
            self.held.discard(role)

    def start_all(self) -> None:
        for role in ROLES:
            self.start(role)
        self._supervisor.start()

    def kill(self, role: str) -> None:
        """``kill -9`` of the role's whole process group (a worker and its pool)."""
        with self.lock:
            self.held.add(role)
            child = self.processes[role]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=10)

    def stop(self, role: str) -> None:
        with self.lock:
            self.held.add(role)
            child = self.processes.get(role)
        if child is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGTERM)
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGKILL)
                child.wait(timeout=10)

    def stop_all(self) -> None:
        """Kill every process (the figures are taken by then)."""
        self._stopping.set()
        for role in ROLES:
            if role in self.processes:
                self.kill(role)

    def log_offsets(self) -> dict[str, int]:
        return {
            role: self.log(role).stat().st_size if self.log(role).exists() else 0 for role in ROLES
        }

    def _supervise(self) -> None:
        while not self._stopping.wait(1.0):
            with self.lock:
                dead = [
                    (role, child.returncode)
                    for role, child in self.processes.items()
                    if role not in self.held and child.poll() is not None
                ]
            for role, code in dead:
                if self._stopping.is_set():
                    return
                runtime.stage(f"chaos: {role} exited by itself ({code}); restarting it")
                self.exits.append((time.time(), role, code if code is not None else -1))
                self.start(role)


# --- the stream reader --------------------------------------------------------------


class StreamReader(threading.Thread):
    """Every result appended to the buffer's stream from now on, as ``(monitor,
    scheduled_ms, started_ms)``; a plain XREAD (it takes nothing from ingest) that
    waits out Redis outages and goes on from the last entry it saw."""

    def __init__(self) -> None:
        super().__init__(name="chaos-stream-reader", daemon=True)
        self.seen: list[tuple[int, int, int]] = []
        self._stopping = threading.Event()

    def run(self) -> None:
        import redis

        from telemetry.buffer import STREAM_KEY, buffer_client
        from telemetry.records import payload_decode

        last: Any = "$"
        while not self._stopping.is_set():
            try:
                client = buffer_client()
                if last == "$":
                    newest = client.xrevrange(STREAM_KEY, count=1)
                    last = newest[0][0] if newest else "0-0"
                answer: Any = client.xread({STREAM_KEY: last}, count=500, block=500)
            except redis.RedisError:
                self._stopping.wait(0.5)
                continue
            for _stream, entries in answer or []:
                for entry_id, fields in entries:
                    last = entry_id
                    for row in payload_decode(fields[b"r"]):
                        self.seen.append((int(row[0]), int(row[1]), int(row[2])))

    def stop(self) -> None:
        self._stopping.set()
        self.join(10)


# --- the drill ------------------------------------------------------------------------


@dataclass
class DrillRun:
    drill: Drill
    window: tuple[int, int] = (0, 0)  # epoch ms
    away: tuple[int, int] = (0, 0)  # epoch ms: fault start, return
    outages: list[Outage] = field(default_factory=list)
    recovery_s: float | None = None
    logs: tuple[dict[str, int], dict[str, int]] = ({}, {})


def drive(*, quick: bool, keep: bool, only: tuple[str, ...] = ()) -> dict[str, object]:
    """Start the private services and the stack, run the drills (those named in
    ``only``, if any, in their usual order), account; the figures under ``chaos.*``."""
    drills: tuple[Drill, ...] = QUICK_DRILLS if quick else DRILLS
    if only:
        unknown = set(only) - {d.name for d in drills}
        if unknown:
            raise ValueError(f"no such drill: {', '.join(sorted(unknown))}")
        drills = tuple(d for d in drills if d.name in only)
    with private_services(keep=keep) as services:
        directory = next(iter(services.values())).directory.parent
        runtime.stage(
            "chaos: private "
            + ", ".join(f"{name} on {s.port}" for name, s in services.items())
            + f" (data and logs in {directory})"
        )
        _point_at(services, directory)
        stack = Stack(directory)
        try:
            return _drills(services, stack, drills)
        finally:
            stack.stop_all()


def _point_at(services: dict[str, PrivateService], directory: Path) -> None:
    """This process and its children use the private services from here on."""
    os.environ.update(runtime.bench_environment(dict(os.environ)))
    os.environ.update(
        {
            "DATABASE_URL": services["mariadb"].url,
            "REDIS_URL": services["redis"].url,
            "CELERY_BROKER_URL": services["rabbitmq"].url,
            "TELEMETRY_SPOOL_DIR": str(directory / "spool"),
            "DJANGO_SETTINGS_MODULE": "sentinel.settings",
        }
    )
    import django
    from django.core.management import call_command

    django.setup()
    started = time.monotonic()
    call_command("ensure_database", verbosity=0)
    call_command("migrate", verbosity=0)
    runtime.stage(f"chaos: private database migrated in {time.monotonic() - started:.0f} s")


def _drills(
    services: dict[str, PrivateService], stack: Stack, drills: tuple[Drill, ...]
) -> dict[str, object]:
    targets, receiver = Targets(), Receiver()
    ids = _create_monitors(targets, receiver)
    reader = StreamReader()
    reader.start()
    stack.start_all()
    _warm_up(ids)
    runs: list[DrillRun] = []
    marks = [(_now_ms(), stack.log_offsets())]  # where each window begins
    for number, drill in enumerate(drills):
        outage_ids = ids[number * OUTAGES_PER_DRILL : (number + 1) * OUTAGES_PER_DRILL]
        runs.append(_drill(drill, services, stack, targets, outage_ids, marks=marks))
    _settle(runs, receiver)
    marks.append((_now_ms(), stack.log_offsets()))
    for run, ((start, before), (end, after)) in zip(runs, drill_windows(marks), strict=True):
        run.window, run.logs = (start, end), (before, after)
    # The slots due just before the last window's end are checked and pushed first.
    time.sleep(TIMEOUT_S + 5)
    stack.stop("beat")
    stack.stop("probes")
    _wait_recovered(services, timeout=60)
    reader.stop()
    return _account(runs, ids, stack, reader, receiver)


def _create_monitors(targets: Targets, receiver: Receiver) -> list[int]:
    from django.contrib.auth.models import User
    from django.utils import timezone

    from alerting.models import AlertRule, NotificationChannel
    from monitors.models import Monitor

    owner, _ = User.objects.get_or_create(username=OWNER)
    overdue = timezone.now() - dt.timedelta(minutes=5)
    Monitor.objects.bulk_create(
        Monitor(
            owner=owner, project_id=owner.personal_project.pk, name=f"chaos {n}",
            url=targets.url(n), interval_seconds=INTERVAL_S,
            timeout_seconds=TIMEOUT_S, next_check_at=overdue,
        )
        for n in range(MONITORS)
    )  # fmt: skip
    monitors = list(Monitor.objects.filter(owner=owner).order_by("pk"))
    channel = NotificationChannel.objects.create(
        owner=owner,
        project_id=owner.personal_project.pk,
        name="chaos receiver",
        kind="webhook",
        config={"url": f"http://{HOST}:{receiver.port}/hook", "secret": "chaos"},
    )
    AlertRule.objects.bulk_create(AlertRule(monitor=m) for m in monitors)
    AlertRule.channels.through.objects.bulk_create(
        AlertRule.channels.through(alertrule_id=rule.pk, notificationchannel_id=channel.pk)
        for rule in AlertRule.objects.filter(monitor__in=monitors)
    )
    return [m.pk for m in monitors]


def _warm_up(ids: list[int], timeout: float = 240) -> None:
    """Until every monitor has a stored result: the whole path works."""
    from django.db import connection

    from sentinel.celery import app

    deadline = time.monotonic() + timeout
    kicked = False
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute("SELECT COUNT(DISTINCT monitor_id) FROM check_result")
            checked = int(cursor.fetchone()[0])
        if checked >= len(ids):
            runtime.stage("chaos: every monitor checked; the drills begin")
            return
        if not kicked and _workers_ready(("probes", "worker")):
            app.send_task("monitors.dispatch.due", expires=50)
            kicked = True
        time.sleep(2)
    raise RuntimeError(f"only {checked} of {len(ids)} monitors were checked in {timeout:.0f} s")


def _workers_ready(roles: tuple[str, ...]) -> bool:
    from sentinel.celery import app

    replies = app.control.ping(timeout=1.0) or []
    hosts = {host.split("@")[0] for reply in replies for host in reply}
    return all(f"{role}-chaos" in hosts for role in roles)


def _drill(
    drill: Drill,
    services: dict[str, PrivateService],
    stack: Stack,
    targets: Targets,
    outage_ids: list[int],
    *,
    marks: list[tuple[int, dict[str, int]]],
) -> DrillRun:
    """Run one drill; note where its window begins in ``marks`` (its fault)."""
    run = DrillRun(drill)
    time.sleep(PRE_S)
    if drill.at_second is not None:
        time.sleep((drill.at_second - time.time()) % 60)
    offsets = stack.log_offsets()
    fault_ms = _now_ms()
    marks.append((fault_ms, offsets))
    run.outages = _begin_outages(targets, outage_ids, fault_ms)
    runtime.stage(f"chaos: {drill.name}: {drill.action} {drill.target} for {drill.away_s:.0f} s")
    service = services.get(drill.target)
    if service is not None:
        service.stop() if drill.action == "stop" else service.kill()
    else:
        stack.kill(drill.target)
    time.sleep(max(0.0, fault_ms / 1000 + drill.away_s - time.time()))
    if service is not None:
        service.start()
    else:
        stack.start(drill.target)
    back_ms = _now_ms()
    run.away = (fault_ms, back_ms)
    runtime.stage(
        f"chaos: {drill.name}: {drill.target} back after {(back_ms - fault_ms) / 1000:.0f} s"
    )
    run.recovery_s = _wait_recovered(services, timeout=RECOVERY_TIMEOUT_S, since_ms=back_ms)
    time.sleep(max(0.0, back_ms / 1000 + drill.tail_s - time.time()))
    runtime.stage(f"chaos: {drill.name}: recovered in {run.recovery_s} s")
    return run


def _begin_outages(targets: Targets, outage_ids: list[int], fault_ms: int) -> list[Outage]:
    """Each monitor's target fails from 2 s before its next slot (at least 3 s away)."""
    from monitors.dispatch import align_up, monitor_phase_ms

    outages = []
    for pk, seconds in zip(outage_ids, OUTAGE_SECONDS, strict=False):
        phase = monitor_phase_ms(monitor_id=pk, interval_seconds=INTERVAL_S)
        slot = align_up(fault_ms + 3_000, period_ms=INTERVAL_S * 1000, phase_ms=phase)
        start = slot - OUTAGE_LEAD_MS
        outage = Outage(pk, start, start + seconds * 1000)
        outages.append(outage)
        targets.outages[_path(pk)] = (outage.start_ms / 1000, outage.end_ms / 1000)
    return outages


_paths: dict[int, int] = {}


def _path(monitor_id: int) -> int:
    """The target path number of a monitor (its name's number)."""
    if not _paths:
        from monitors.models import Monitor

        rows = Monitor.objects.filter(owner__username=OWNER).values_list("pk", "name")
        _paths.update({pk: int(name.rsplit(" ", 1)[1]) for pk, name in rows})
    return _paths[monitor_id]


def _backlog(services: dict[str, PrivateService]) -> tuple[int, float | None] | None:
    """(spool files, oldest buffered result's age) or None while Redis does not answer."""
    import redis

    from telemetry.buffer.depth import buffer_oldest_age_seconds
    from telemetry.buffer.spool import spool_dir

    directory = spool_dir()
    spooled = sum(1 for p in directory.iterdir() if ".jsonl" in p.name) if directory.is_dir() else 0
    try:
        return spooled, buffer_oldest_age_seconds()
    except redis.RedisError:
        return None


def _wait_recovered(
    services: dict[str, PrivateService], *, timeout: float, since_ms: int | None = None
) -> float | None:
    """Seconds from ``since_ms`` until the spool is empty and the buffer holds nothing
    older than BACKLOG_AGE_S; None if not within ``timeout``."""
    since = (since_ms or _now_ms()) / 1000
    deadline = time.time() + timeout
    while time.time() < deadline:
        backlog = _backlog(services)
        if backlog is not None:
            spooled, age = backlog
            if spooled == 0 and (age is None or age <= BACKLOG_AGE_S):
                return round(time.time() - since, 1)
        time.sleep(0.5)
    return None


def _settle(runs: list[DrillRun], receiver: Receiver) -> None:
    """Until every outage has had its down and up alerts and no notification is left
    to send, or SETTLE_AFTER_OUTAGES_S after the last outage ended."""
    from django.db import connection

    from alerting.models import Notification

    last_end = max(o.end_ms for run in runs for o in run.outages) / 1000
    deadline = last_end + SETTLE_AFTER_OUTAGES_S
    wanted = {(o.monitor_id, e) for run in runs for o in run.outages for e in ("down", "up")}
    runtime.stage(f"chaos: waiting for the alerts (at most {deadline - time.time():.0f} s)")
    unfinished = ["pending", "sending", "retrying"]
    while time.time() < deadline:
        got = {(a.monitor_id, a.event) for a in receiver.arrivals}
        # A connection from before the MariaDB drill is dead: a new one each time.
        connection.close()
        if wanted <= got and not Notification.objects.filter(status__in=unfinished).exists():
            time.sleep(3)  # a repeat right behind
            return
        time.sleep(2)


# --- the figures --------------------------------------------------------------------


def _account(
    runs: list[DrillRun], ids: list[int], stack: Stack, reader: StreamReader, receiver: Receiver
) -> dict[str, object]:
    from django.db import connection

    from alerting.models import Notification
    from core.time import to_epoch_ms

    connection.close()
    seen = Observed(streamed=reader.seen, arrivals=receiver.arrivals)
    with connection.cursor() as cursor:
        cursor.execute("SELECT monitor_id, scheduled_at, started_at FROM check_result")
        for monitor_id, scheduled_at, started_at in cursor.fetchall():
            slot = to_epoch_ms(_aware(scheduled_at))
            seen.lag_ms[(monitor_id, slot)] = to_epoch_ms(_aware(started_at)) - slot
            seen.by_monitor[monitor_id].append(slot)
    seen.in_doubt = {
        str(pk)
        for pk in Notification.objects.filter(resends_in_doubt__gt=0).values_list("pk", flat=True)
    }
    outage_ids = {o.monitor_id for run in runs for o in run.outages}
    report: dict[str, Any] = {
        "chaos.monitors": len(ids),
        "chaos.interval_s": INTERVAL_S,
        "chaos.drills": [run.drill.name for run in runs],
    }
    for run in runs:
        report.update(_drill_figures(run, ids, seen, stack))
    report["chaos.alerts_unexpected"] = sum(
        1 for a in receiver.arrivals if a.event in ("down", "up") and a.monitor_id not in outage_ids
    )
    names = [run.drill.name for run in runs]
    totals = {"results_lost": "results_missing", "alerts_lost": "alerts_lost"}
    totals["alerts_duplicated"] = "alerts_duplicated"
    for total, figure in totals.items():
        report[f"chaos.{total}"] = sum(report[f"chaos.{name}.{figure}"] for name in names)
    recoveries = [report[f"chaos.{name}.recovery_s"] for name in names]
    # A drill that did not recover within RECOVERY_TIMEOUT_S misses the goal.
    report["chaos.recovery_max_s"] = max(recoveries) if None not in recoveries else float("nan")
    report["chaos.process_exits"] = len(stack.exits)
    report["chaos.dead_letters"] = _dead_letters()
    return report


@dataclass
class Observed:
    """What the run left: the result stream, the deliveries, the stored rows (each
    slot's start lag, and each monitor's stored slots) and the ids re-sent in doubt."""

    streamed: list[tuple[int, int, int]]
    arrivals: list[Arrival]
    lag_ms: dict[Slot, int] = field(default_factory=dict)
    by_monitor: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    in_doubt: set[str] = field(default_factory=set)


def _drill_figures(
    run: DrillRun, ids: list[int], seen: Observed, stack: Stack
) -> dict[str, object]:
    start, end = run.window
    expected = expected_slots(monitor_ids=ids, interval_s=INTERVAL_S, start_ms=start, end_ms=end)
    stored = seen.lag_ms.keys()
    kept = expected & stored
    lags = [seen.lag_ms[slot] / 1000 for slot in kept]
    missing = explain_missing(
        expected - stored,
        stored_by_monitor=seen.by_monitor,
        away=run.away if run.drill.skips_by_design else None,
        interval_ms=INTERVAL_S * 1000,
    )
    duplicates = stream_duplicates(seen.streamed, slots=expected)
    alerts = account_alerts(
        expected=expected_alerts(
            run.outages, skipped=missing.skipped_by_design, interval_s=INTERVAL_S
        ),
        arrivals=seen.arrivals,
        monitors={o.monitor_id for o in run.outages},
        in_doubt=seen.in_doubt,
    )
    expected_keys = expected_alerts(
        run.outages, skipped=missing.skipped_by_design, interval_s=INTERVAL_S
    )
    arrived = {(a.monitor_id, a.event) for a in seen.arrivals}
    tracebacks, unreachable = {}, {}
    before, after = run.logs
    for role in ROLES:
        with stack.log(role).open("rb") as handle:
            handle.seek(before.get(role, 0))
            text = handle.read(after.get(role, 0) - before.get(role, 0)).decode(errors="replace")
        tracebacks[role], unreachable[role] = log_counts(text)
        for error, count in traceback_errors(text).most_common(3):
            runtime.stage(f"  {run.drill.name}: {role}: {count} x {error}")
    key = f"chaos.{run.drill.name}"
    return {
        f"{key}.fault": f"{run.drill.action} {run.drill.target} {run.drill.away_s:.0f} s",
        f"{key}.window_s": round((end - start) / 1000, 1),
        f"{key}.results_expected": len(expected),
        f"{key}.results_stored": len(kept),
        f"{key}.results_missing": len(missing.lost),
        # Where the lost slots lie, in seconds from the fault's start: (first, last).
        f"{key}.results_missing_between_s": _offsets(missing.lost, run.away[0]),
        f"{key}.results_skipped_by_design": len(missing.skipped_by_design),
        f"{key}.results_unexpected": sum(1 for m, s in stored if start <= s < end) - len(kept),
        f"{key}.results_duplicated": duplicates.copies,
        f"{key}.checks_duplicated": duplicates.checked_twice,
        # Stored slots whose check started late (a batch redelivered or waiting).
        f"{key}.checks_late_over_5s": sum(lag > LATE_S for lag in lags),
        f"{key}.check_lag_max_s": round(max(lags, default=0.0), 1),
        f"{key}.alerts_expected": alerts.expected,
        f"{key}.alerts_sent": alerts.sent,
        f"{key}.alerts_lost": alerts.lost,
        f"{key}.alerts_duplicated_in_doubt": alerts.duplicated_in_doubt,
        f"{key}.alerts_duplicated": alerts.duplicated,
        f"{key}.alerts_unexpected": alerts.unexpected,
        # What the system holds for each lost alert: where to look first.
        f"{key}.alerts_lost_detail": _lost_detail(expected_keys - arrived, run.away[0]),
        f"{key}.recovery_s": run.recovery_s,
        f"{key}.tracebacks": tracebacks,
        f"{key}.unreachable_lines": unreachable,
        f"{key}.process_exits": sum(1 for at, _, _ in stack.exits if start <= at * 1000 < end),
    }


def _lost_detail(lost: set[tuple[int, str]], origin_ms: int) -> list[str]:
    """One line per lost ``(monitor, event)``: the monitor's incidents (start and end in
    seconds from ``origin_ms``, end reason) and its notifications of that event (status,
    attempts, error), as the database has them."""
    from alerting.models import Notification
    from monitors.models import Incident

    lines = []
    for monitor_id, event in sorted(lost):
        incidents = [
            f"incident {i.pk} {_since(i.started_at, origin_ms)}..{_since(i.ended_at, origin_ms)}"
            f" {i.end_reason or 'open'}"
            for i in Incident.objects.filter(monitor_id=monitor_id).order_by("started_at")
        ]
        notifications = [
            f"{n.dedup_key} {n.status} x{n.attempts} {n.hold_reason} {n.error}".strip()
            for n in Notification.objects.filter(monitor_id=monitor_id, event=event)
        ]
        lines.append(
            f"monitor {monitor_id} {event}: "
            + "; ".join(incidents or ["no incident"])
            + " | "
            + "; ".join(notifications or ["no notification"])
        )
    return lines


def _since(at: dt.datetime | None, origin_ms: int) -> str:
    if at is None:
        return "-"
    from core.time import to_epoch_ms

    return f"{(to_epoch_ms(_aware(at)) - origin_ms) / 1000:+.0f}s"


def _offsets(slots: set[Slot], origin_ms: int) -> list[float]:
    """The first and the last of ``slots`` in seconds from ``origin_ms``; [] if none."""
    if not slots:
        return []
    times = [slot for _, slot in slots]
    return [round((min(times) - origin_ms) / 1000, 1), round((max(times) - origin_ms) / 1000, 1)]


def _dead_letters() -> dict[str, int]:
    """Messages in RabbitMQ's ``dead`` queue and results in the buffer's dead letters."""
    from sentinel.celery import app
    from telemetry.buffer.depth import buffer_stats

    messages = 0
    with app.connection_for_write() as conn, contextlib.suppress(Exception):
        # Declared by the workers when they start; absent, it holds nothing.
        channel: Any = conn.default_channel
        _, messages, _ = channel.queue_declare("dead", passive=True)
    return {"broker_dead_queue": int(messages), "buffer": buffer_stats().dead_letters}


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _now_ms() -> int:
    return round(time.time() * 1000)


# --- entry points ---------------------------------------------------------------------

CHILD_TIMEOUT_S = 1800


def run(*, quick: bool, report: dict[str, object]) -> None:
    """The harness's entry: the drill in a child process of its own (its Django settings
    point at the private services from the start), its figures added to ``report``."""
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "chaos.json"
        command = [sys.executable, "-m", "benchmarks.chaos", "--output", str(output)]
        child = runtime.spawn([*command, *(["--quick"] if quick else [])], quiet=False)
        try:
            code: int | None = child.wait(timeout=CHILD_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            code = None
        runtime.stop(child, grace_seconds=60)  # it stops its stack and services on SIGTERM
        if code != 0 or not output.exists():
            raise RuntimeError(f"python -m benchmarks.chaos exited with {code}")
        report.update(json.loads(output.read_text()))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="outage drills on private services")
    parser.add_argument("--quick", action="store_true", help="two short drills")
    parser.add_argument("--keep", action="store_true", help="keep the data and logs")
    parser.add_argument("--output", type=Path, help="write the figures there too")
    parser.add_argument(
        "--drills",
        default="",
        help="only these drills, comma-separated (of: " + ", ".join(d.name for d in DRILLS) + ")",
    )
    args = parser.parse_args(argv)
    # Stopped by the harness: leave through the finally blocks (stack, services).
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    signal.signal(signal.SIGINT, lambda signum, frame: sys.exit(128 + signum))
    only = tuple(name for name in args.drills.split(",") if name)
    figures = drive(quick=args.quick, keep=args.keep, only=only)
    text = json.dumps(figures, indent=2, sort_keys=True, default=str)
    if args.output:
        args.output.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
