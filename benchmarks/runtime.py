"""What every benchmark scenario shares: the bench environment, child processes that
are always cleaned up, and small statistics helpers.

Scenarios start servers and workers; a benchmark that leaves a Celery worker
running after Ctrl-C poisons the next run. Every child goes through ``spawn``,
which starts it in its own process group and registers it, and ``stop_all`` (run
by the harness on exit, error and signal) kills each group.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from telemetry import histogram

ROOT = Path(__file__).resolve().parent.parent
# Another run on the same servers (a colleague's branch) can take names of its own.
BENCH_DATABASE = os.environ.get("BENCH_DATABASE", "sentinel_bench")
BENCH_REDIS_DB = int(os.environ.get("BENCH_REDIS_DB", "14"))
BENCH_VHOST = os.environ.get("BENCH_VHOST", "sentinel_bench")
# Runs with the same names would drain each other's buffer; runs with their own do not.
LOCK_NAME = BENCH_DATABASE

_children: list[subprocess.Popen[bytes]] = []


def bench_environment(environ: dict[str, str]) -> dict[str, str]:
    """The environment for the bench: same servers, separate database, Redis db and vhost,
    so a benchmark never touches real data."""
    env = dict(environ)
    database_url = env.get("DATABASE_URL", "mysql://root:@127.0.0.1:3306/sentinel")
    env["DATABASE_URL"] = _with_path(database_url, f"/{BENCH_DATABASE}")
    redis_url = env.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    env["REDIS_URL"] = _with_path(redis_url, f"/{BENCH_REDIS_DB}")
    broker_url = env.get("CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
    if _vhost_ready():
        env["CELERY_BROKER_URL"] = _with_path(broker_url, f"/{BENCH_VHOST}")
    env["SENTINEL_ALLOWED_NETWORKS"] = "127.0.0.0/8,::1/128"
    env["DEBUG"] = "false"
    env.setdefault("SECRET_KEY", "bench-only-" + "x" * 60)
    env.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost")
    env["SECURE_SSL_REDIRECT"] = "false"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _with_path(url: str, path: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


def _vhost_ready() -> bool:
    """Create the bench vhost when rabbitmqctl is at hand (a local broker); else share '/'."""
    try:
        subprocess.run(
            ["rabbitmqctl", "-q", "add_vhost", BENCH_VHOST],
            capture_output=True,
            timeout=30,
            check=False,
        )
        done = subprocess.run(
            ["rabbitmqctl", "-q", "set_permissions", "-p", BENCH_VHOST, "guest", ".*", ".*", ".*"],
            capture_output=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def spawn(
    args: Sequence[str], *, env: dict[str, str] | None = None, quiet: bool = True
) -> subprocess.Popen[bytes]:
    """Start a child in its own process group; ``stop_all`` will end it."""
    output = subprocess.DEVNULL if quiet else None
    child = subprocess.Popen(
        list(args),
        cwd=ROOT,
        env=env or dict(os.environ),
        stdout=output,
        stderr=output,
        start_new_session=True,
    )
    _children.append(child)
    return child


def probe_worker_environment() -> dict[str, str]:
    """This environment as a probe worker's is in production: no database at all."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith("DATABASE_")}
    return {**kept, "SENTINEL_ROLE": "probe"}


def manage_args(*args: str) -> list[str]:
    return [sys.executable, str(ROOT / "manage.py"), *args]


def stop(child: subprocess.Popen[bytes], *, grace_seconds: float = 10) -> None:
    """TERM the child's process group, then KILL it if it lingers."""
    if child.poll() is None:
        _signal_group(child, signal.SIGTERM)
        try:
            child.wait(timeout=grace_seconds)
        except subprocess.TimeoutExpired:
            _signal_group(child, signal.SIGKILL)
            child.wait(timeout=10)
    # Grandchildren (a worker's pool processes) may outlive the leader: end them too.
    _signal_group(child, signal.SIGKILL)
    if child in _children:
        _children.remove(child)


def stop_all() -> None:
    for child in list(_children):
        stop(child, grace_seconds=5)


def _signal_group(child: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, sig)


def percentile(values: Sequence[float], fraction: float) -> float:
    """The product's percentile (``telemetry.histogram.percentile``, ``fraction`` in
    0..1) of ``values``; NaN if there are none."""
    found = histogram.percentile(sorted(values), fraction)
    return math.nan if found is None else float(found)


def timed_ms(function: object, *args: object, repeat: int) -> list[float]:
    """Run ``function(*args)`` ``repeat`` times; each duration in milliseconds."""
    durations = []
    for _ in range(repeat):
        start = time.perf_counter()
        function(*args)  # type: ignore[operator]
        durations.append((time.perf_counter() - start) * 1000)
    return durations


def stage(message: str) -> None:
    """One progress line, flushed at once so it shows while a stage runs."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


@contextlib.contextmanager
def bench_lock(*, wait_seconds: int = 3600) -> Iterator[None]:
    """Hold a named lock on the MySQL server for the whole run: runs with the same bench
    database (and so, unless overridden together, Redis db and vhost) on that server
    would drain each other's buffer (a second terminal, the test suite's quick
    scenarios). The lock is named after the database."""
    import MySQLdb
    from django.db import connection

    params = connection.get_connection_params()
    for name in ("client_flag", "database", "db"):  # a server-wide lock needs no database
        params.pop(name, None)
    conn = MySQLdb.connect(**params)  # its own connection: scenarios close Django's
    try:
        cursor = conn.cursor()
        cursor.execute("SELECT GET_LOCK(%s, 0)", [LOCK_NAME])
        if cursor.fetchone()[0] != 1:
            stage("another benchmark run holds the bench lock on this server; waiting for it")
            cursor.execute("SELECT GET_LOCK(%s, %s)", [LOCK_NAME, wait_seconds])
            if cursor.fetchone()[0] != 1:
                raise RuntimeError(f"the bench lock stayed taken for {wait_seconds} s")
        yield
    finally:
        conn.close()  # releases the lock
