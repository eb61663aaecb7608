"""A real Celery worker in a subprocess, for tests of what a worker process does."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def celery_worker(
    *, environment: Mapping[str, str], log: Path, name: str, concurrency: int = 4
) -> Iterator[subprocess.Popen[bytes]]:
    """A worker of the ``probes`` queue (threads pool) with ``environment``, writing to
    ``log``; stopped (terminated, killed after 30 s) when the block ends."""
    with log.open("w") as output:
        worker = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "sentinel", "worker",
                "--queues", "probes", "--pool", "threads", "--concurrency", str(concurrency),
                "--without-gossip", "--without-mingle", "--without-heartbeat",
                "--hostname", f"{name}-{os.getpid()}@%h", "--loglevel", "INFO",
            ],
            cwd=ROOT,
            env={**environment, "DJANGO_SETTINGS_MODULE": "sentinel.settings"},
            stdout=output,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        yield worker
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
