"""The demo that ``make run`` shows: an admin account, a small local target and a
few monitors pointing at it, so a newcomer sees checks flow in the first minute."""

from __future__ import annotations

import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User

from monitors.models import Monitor
from monitors.services import monitor_create

DEMO_TARGET_HOST = "127.0.0.1"
DEMO_TARGET_PORT = 8081


class DemoTargetHandler(BaseHTTPRequestHandler):
    """A handful of behaviours an uptime checker must tell apart."""

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/slow":
            time.sleep(0.8)
        if path == "/flaky" and secrets.randbelow(4) == 0:
            self._reply(503, b"temporarily unavailable\n")
        elif path == "/error":
            self._reply(500, b"internal error\n")
        elif path in ("/", "/ok", "/slow", "/flaky"):
            self._reply(200, b"<html><body>status: all systems operational</body></html>\n")
        else:
            self._reply(404, b"not found\n")

    def do_HEAD(self) -> None:
        self.do_GET()

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the checks, not the target, are what make run shows."""


def demo_target_serve(
    *, host: str = DEMO_TARGET_HOST, port: int = DEMO_TARGET_PORT
) -> ThreadingHTTPServer:
    """Start the demo target in a thread; returns the server (call shutdown() to stop)."""
    server = ThreadingHTTPServer((host, port), DemoTargetHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="demo-target", daemon=True).start()
    return server


DEMO_MONITORS = [
    {"name": "Demo: homepage", "path": "/", "keyword": "operational", "tags": ["demo", "web"]},
    {"name": "Demo: slow page", "path": "/slow", "keyword": "", "tags": ["demo"]},
    {"name": "Demo: flaky API", "path": "/flaky", "keyword": "", "tags": ["demo", "api"]},
    {"name": "Demo: broken page", "path": "/error", "keyword": "", "tags": ["demo"]},
]


def demo_admin_ensure(*, username: str = "admin") -> tuple[User, str | None]:
    """The admin account, and its password if it was created just now (else None)."""
    user_model = get_user_model()
    user = user_model.objects.filter(username=username).first()
    if user is not None:
        return user, None
    password = secrets.token_urlsafe(12)
    user = user_model.objects.create_superuser(username=username, email="", password=password)
    return user, password


def demo_monitors_ensure(*, owner: User, base_url: str) -> int:
    """Create the demo monitors that do not exist yet; returns how many were created."""
    created = 0
    for spec in DEMO_MONITORS:
        if Monitor.objects.filter(owner=owner, name=spec["name"]).exists():
            continue
        monitor_create(
            owner=owner,
            name=spec["name"],
            url=f"{base_url}{spec['path']}",
            keyword=spec["keyword"],
            interval_seconds=30,
            timeout_seconds=5,
            tags=spec["tags"],
        )
        created += 1
    return created
