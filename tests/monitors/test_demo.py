from __future__ import annotations

import socket
import urllib.error
import urllib.request

import pytest
from django.core.management import call_command

from monitors.demo import demo_target_serve
from monitors.models import Monitor


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def demo_target():
    port = free_port()
    server = demo_target_serve(port=port)
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    server.server_close()


def fetch(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (loopback only)
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_the_demo_target_serves_healthy_and_broken_pages(demo_target):
    assert fetch(f"{demo_target}/") == (
        200,
        "<html><body>status: all systems operational</body></html>\n",
    )
    assert fetch(f"{demo_target}/error")[0] == 500
    assert fetch(f"{demo_target}/missing")[0] == 404


@pytest.mark.django_db
def test_demo_setup_creates_the_admin_once_and_the_demo_monitors_once(capsys):
    call_command("demo_setup")
    first = capsys.readouterr().out
    call_command("demo_setup")
    second = capsys.readouterr().out

    assert "password '" in first and "shown only this once" in first
    assert "password '" not in second
    assert Monitor.objects.filter(owner__username="admin").count() == 4
    assert all(m.url.startswith("http://127.0.0.1:8081/") for m in Monitor.objects.all())
