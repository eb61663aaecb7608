"""The write buffer lives in Redis: a Redis that keeps nothing on disk is said once at
start-up, and one that persists is not. Each case runs its own private redis-server on a
free loopback port (the machine's Redis is left as it is)."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django.core.management import call_command

from core.redis import persistence_warning


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def private_redis(directory: Path, *options: str) -> Iterator[redis.Redis]:
    port = free_port()
    server = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(directory),
            *options,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port, socket_connect_timeout=1)
    try:
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        yield client
    finally:
        client.close()
        server.terminate()
        server.wait(10)


@pytest.fixture
def volatile_redis(tmp_path) -> Iterator[redis.Redis]:
    yield from private_redis(tmp_path, "--appendonly", "no", "--save", "")


@pytest.fixture
def durable_redis(tmp_path) -> Iterator[redis.Redis]:
    yield from private_redis(tmp_path, "--appendonly", "yes", "--appendfsync", "everysec")


@pytest.fixture
def snapshot_redis(tmp_path) -> Iterator[redis.Redis]:
    yield from private_redis(tmp_path, "--appendonly", "no", "--save", "60 1")


def test_a_redis_that_keeps_nothing_on_disk_is_named(volatile_redis):
    warning = persistence_warning(volatile_redis)

    assert warning is not None and "lost if it restarts" in warning and "appendonly" in warning


def test_a_redis_with_an_append_only_file_or_snapshots_is_fine(durable_redis, snapshot_redis):
    assert persistence_warning(durable_redis) is None
    assert persistence_warning(snapshot_redis) is None


def test_preflight_warns_once_about_a_volatile_redis(volatile_redis, settings, capsys):
    port = volatile_redis.connection_pool.connection_kwargs["port"]
    settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"

    call_command("preflight")

    assert capsys.readouterr().err.count("keeps nothing on disk") == 1
