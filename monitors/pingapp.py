"""The ping endpoint: a lean WSGI application in front of Django, in the same web
process (``sentinel.wsgi`` routes ``/ping/`` here and everything else to Django).

A ping is on the hot path of someone else's job, so it skips Django's request
machinery entirely (no middleware, session, authentication, CSRF or cookies: none of
them apply to an unguessable URL) and MySQL: the ping URL is looked up, rate limited,
paired with its run's start and appended to the Redis buffer in one Lua script
(``telemetry.buffer.pings``); ingest stores it in bulk. A 200 means the ping is in the
buffer; if Redis is away the answer is 503 and the job's retry (``curl --retry``)
sends it again.

URLs (GET, POST and HEAD all count; healthchecks/healthchecks' semantics):

- ``/ping/<uuid>`` and ``/ping/<ping key>/<slug>``: success;
- ``.../start``: the job started (paired with its end for the run time);
- ``.../fail``: the job failed; ``.../log``: a message, no change of state;
- ``.../<exit status>``: 0 is a success, 1-255 a failure;
- ``?rid=<run id>``: pairs a start with its end when runs of a job overlap.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import redis
from django.conf import settings

from core.reachability import unreachable_log
from monitors.heartbeats import ROUTES_KEY, heartbeat_routes_rebuild
from telemetry.buffer.pings import Ping, PingOutcome, ping_push
from telemetry.pings import MAX_REMOTE_ADDR_LENGTH, MAX_RUN_ID_LENGTH, MAX_USER_AGENT_LENGTH

log = logging.getLogger(__name__)

PREFIX = "/ping/"
SIGNALS = frozenset({"start", "fail", "log"})
METHODS = frozenset({"GET", "POST", "HEAD"})

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

_ANSWERS = {
    200: (b"200 OK", b"OK\n"),
    400: (b"400 Bad Request", b"bad request\n"),
    404: (b"404 Not Found", b"not found\n"),
    405: (b"405 Method Not Allowed", b"use GET, POST or HEAD\n"),
    429: (b"429 Too Many Requests", b"rate limited\n"),
    503: (b"503 Service Unavailable", b"try again\n"),
}


def with_ping_path(app: WSGIApp) -> WSGIApp:
    """``app`` (Django) with ``/ping/...`` answered by ``ping_app`` in front of it."""

    def route(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").startswith(PREFIX):
            return ping_app(environ, start_response)
        return app(environ, start_response)

    return route


def ping_app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """Answer one ping request (see the module docstring)."""
    status = ping_handle(environ)
    line, body = _ANSWERS[status]
    headers = [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(body))),
        # Pings from a browser's fetch() are allowed, as Healthchecks allows them.
        ("Access-Control-Allow-Origin", "*"),
        ("Cache-Control", "no-store"),
    ]
    start_response(line.decode(), headers)
    return [b"" if environ.get("REQUEST_METHOD") == "HEAD" else body]


def ping_handle(environ: dict[str, Any]) -> int:
    """The HTTP status of one ping request, once stored (200) or refused."""
    method = environ.get("REQUEST_METHOD", "GET")
    if method not in METHODS:
        return 405
    parsed = ping_path_parse(environ.get("PATH_INFO", "")[len(PREFIX) :])
    if parsed is None:
        return 404
    route, signal = parsed
    kind, exit_status = _signal(signal)
    if kind == "":
        return 400
    run_id = _query_rid(environ.get("QUERY_STRING", ""))
    if run_id is None:
        return 400
    body, truncated = _body(environ) if method == "POST" else ("", False)
    ping = Ping(
        route=route,
        received_us=time.time_ns() // 1000,
        kind=kind,
        exit_status=exit_status,
        run_id=run_id,
        method=method,
        remote_addr=environ.get("REMOTE_ADDR", "")[:MAX_REMOTE_ADDR_LENGTH],
        user_agent=environ.get("HTTP_USER_AGENT", "")[:MAX_USER_AGENT_LENGTH],
        body=body,
        body_truncated=truncated,
    )
    return _store(ping)


def ping_path_parse(path: str) -> tuple[str, str] | None:
    """``(route, signal)`` of a ping path after ``/ping/``: ``<uuid>[/<signal>]`` or
    ``<ping key>/<slug>[/<signal>]``; None for anything else (a 404 that says
    nothing). The route is the routes hash field (``monitors.heartbeats``)."""
    parts = path.rstrip("/").split("/")
    if not parts[0] or len(parts) > 3:
        return None
    try:
        route = str(uuid.UUID(parts[0]))
    except ValueError:
        if len(parts) < 2:
            return None
        return f"{parts[0]}/{parts[1]}", parts[2] if len(parts) == 3 else ""
    if len(parts) > 2:
        return None
    return route, parts[1] if len(parts) == 2 else ""


def _signal(signal: str) -> tuple[str, int | None]:
    """(ping kind, exit status); kind "" for a signal that is not one."""
    if not signal:
        return "success", None
    if signal in SIGNALS:
        return signal, None
    if signal.isdigit() and len(signal) <= 3 and int(signal) <= 255:
        return "exit", int(signal)
    return "", None


def _query_rid(query: str) -> str | None:
    """The ``rid`` parameter ("" without one); None when it is too long."""
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        if name == "rid":
            return value if len(value) <= MAX_RUN_ID_LENGTH and value.isprintable() else None
    return ""


def _body(environ: dict[str, Any]) -> tuple[str, bool]:
    """The POST body, at most ``HEARTBEAT_PING_BODY_MAX_BYTES`` of it, and whether
    there was more (read and dropped: the client is not left with an unread body)."""
    limit = settings.HEARTBEAT_PING_BODY_MAX_BYTES
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    stream = environ["wsgi.input"]
    data = stream.read(min(length, limit + 1)) if length else b""
    truncated = length > limit
    if truncated:
        left = length - len(data)
        while left > 0 and (chunk := stream.read(min(left, 65536))):
            left -= len(chunk)
    return data[:limit].decode("utf-8", errors="replace"), truncated


def _store(ping: Ping) -> int:
    limit = settings.HEARTBEAT_PING_RATE_LIMIT
    try:
        outcome, _ = ping_push(ping=ping, routes_key=ROUTES_KEY, limit_per_minute=limit)
        if outcome is PingOutcome.NO_ROUTES:
            heartbeat_routes_rebuild()
            outcome, _ = ping_push(ping=ping, routes_key=ROUTES_KEY, limit_per_minute=limit)
    except redis.RedisError as exc:
        unreachable_log(log, "redis", exc, "pings are answered 503 (the job's retry resends)")
        return 503
    return _STATUS[outcome]


_STATUS = {
    PingOutcome.STORED: 200,
    PingOutcome.UNKNOWN: 404,
    PingOutcome.NO_ROUTES: 503,  # another process is rebuilding the routes
    PingOutcome.RATE_LIMITED: 429,
}
