"""Pinging through the web tier's WSGI application, and storing what was pinged."""

from __future__ import annotations

import datetime as dt
import io
import types
from unittest import mock

from django.db import connection

from sentinel.wsgi import application
from telemetry.ingest import ingest_batch


def ping(
    path: str,
    *,
    method: str = "GET",
    body: bytes = b"",
    query: str = "",
    at: dt.datetime | None = None,
) -> int:
    """The HTTP status the web tier answers a ping request with; ``at``: the web
    tier's clock when it receives it (now by default)."""
    if at is not None:
        clock = types.SimpleNamespace(time_ns=lambda: int(at.timestamp() * 1e6) * 1000)
        with mock.patch("monitors.pingapp.time", clock):
            return ping(path, method=method, body=body, query=query)
    answer: dict[str, str] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        answer["status"] = status
        answer["headers"] = repr(headers)

    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_USER_AGENT": "curl/8",
    }
    b"".join(application(environ, start_response))
    assert "Set-Cookie" not in answer["headers"]
    return int(answer["status"].split()[0])


def ingest() -> None:
    """Store everything in the buffer, as the ingest loop does."""
    while ingest_batch(consumer="tests", linger_ms=0).taken:
        pass


def stored_pings(monitor_id: int) -> list[tuple]:
    """(kind, exit status, run id, run ms, method, body, truncated) of each stored ping."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT kind, exit_status, run_id, duration_ms, method, body, body_truncated "
            "FROM heartbeat_ping WHERE monitor_id = %s ORDER BY received_at",
            [monitor_id],
        )
        return [tuple(row) for row in cursor.fetchall()]


def stored_results(monitor_id: int) -> list[tuple]:
    """(ok, failure, duration ms) of each stored result."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT ok, failure, duration_ms FROM check_result WHERE monitor_id = %s "
            "ORDER BY scheduled_at",
            [monitor_id],
        )
        return [(bool(ok), failure, ms) for ok, failure, ms in cursor.fetchall()]
