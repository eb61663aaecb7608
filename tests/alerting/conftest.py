"""Fixtures for alerting: a real local HTTP receiver, fake DNS, eager Celery."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from alerting import netguard
from alerting.services import alerts_sweep
from monitors.models import Monitor
from monitors.signals import results_applied
from monitors.state import StateChange
from sentinel.celery import app
from telemetry.ingest import rows_store
from telemetry.records import CheckResult, FailureKind

T0 = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1. Paths choose the answer:
    ``/ok``; ``/status/404``; ``/flaky/2`` (503 twice, then 200); ``/hang/2.0`` (sleeps)."""

    port: int = 0
    requests: list[Received] = field(default_factory=list)  # the ones answered 2xx
    every_request: list[Received] = field(default_factory=list)  # failures included
    hits: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str = "/ok", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return list(self.requests)

    def answer(self, path: str) -> int:
        with self.lock:
            self.hits[path] = self.hits.get(path, 0) + 1
            hit = self.hits[path]
        parts = path.strip("/").split("/")
        if parts[0] == "status":
            return int(parts[1])
        if parts[0] == "flaky":
            return 503 if hit <= int(parts[1]) else 200
        if parts[0] == "hang":
            time.sleep(float(parts[1]))
        return 200


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            path = self.path.split("?")[0]
            code = receiver.answer(path)
            received = Received(path, dict(self.headers.items()), body, time.monotonic())
            with receiver.lock:
                receiver.every_request.append(received)
                if code < 300:
                    receiver.requests.append(received)
            try:
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
            except OSError:
                pass  # the client gave up (timeout test)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


class _Server(ThreadingHTTPServer):
    # A batch sends side by side; socketserver's default backlog of 5 would drop the
    # SYNs of the sixth and later connections (a 1 s retransmit, or a reset).
    request_queue_size = 64


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()
    server = _Server(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def fake_dns(monkeypatch) -> dict[str, str]:
    """Names to fake addresses; every other name resolves for real. Nothing is ever
    sent to a fake non-loopback address: the guard refuses it before connecting."""
    answers: dict[str, str] = {}
    real = netguard.system_getaddrinfo

    def resolve(host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        name = host.decode() if isinstance(host, bytes) else host
        if name in answers:
            return real(answers[name], port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(netguard, "system_getaddrinfo", resolve)
    return answers


@pytest.fixture
def connect_log(monkeypatch) -> list[Any]:
    """Every address a Python socket connects to during the test."""
    import socket

    log: list[Any] = []
    original = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> Any:
        log.append(address)
        return original(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return log


@pytest.fixture
def eager_celery() -> Iterator[None]:
    """Run queued alert tasks in-process (retries too, without their countdown)."""
    old = app.conf.task_always_eager, app.conf.task_eager_propagates
    # Not propagating: an eager retry is raised as an exception otherwise; the tests
    # assert on the recorded outcome instead.
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, False
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = old


def check(
    monitor: Monitor,
    minute: float,
    ok: bool,
    *,
    duration_ms: int = 20,
    tls_expires_at: dt.datetime | None = None,
) -> CheckResult:
    at = T0 + dt.timedelta(minutes=minute)
    return CheckResult(
        monitor_id=monitor.pk,
        scheduled_at=at,
        started_at=at,
        duration_ms=duration_ms,
        ok=ok,
        status_code=200 if ok else 503,
        failure=None if ok else FailureKind.STATUS,
        error="" if ok else "HTTP 503",
        tls_expires_at=tls_expires_at,
    )


@pytest.fixture
def feed(django_capture_on_commit_callbacks, telemetry_tables):
    """What ingest does with a batch: store the rows, and in the same transaction move
    the live state and evaluate the rules (through the signals). Returns the batch's
    state changes; a result stored before is a replay and changes nothing."""

    def run(results: list[CheckResult]) -> list[StateChange]:
        found: list[StateChange] = []
        with collected(found), django_capture_on_commit_callbacks(execute=True):
            rows_store(rows=[result.to_wire() for result in results])
        return found

    return run


@contextlib.contextmanager
def collected(into: list[StateChange]) -> Iterator[None]:
    """Collect the state changes ``results_applied`` announces (in any thread) into ``into``."""

    def collect(*, changes: list[StateChange], **_: Any) -> None:
        into.extend(changes)

    uid = f"tests-collect-{id(into)}"
    results_applied.connect(collect, dispatch_uid=uid, weak=False)
    try:
        yield
    finally:
        results_applied.disconnect(dispatch_uid=uid)


@pytest.fixture
def sweep(django_capture_on_commit_callbacks):
    """The periodic sweep at a simulated time, running what it queues."""

    def run(now: dt.datetime) -> dict[str, int]:
        with django_capture_on_commit_callbacks(execute=True):
            return alerts_sweep(now=now)

    return run
