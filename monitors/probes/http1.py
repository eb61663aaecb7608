"""A minimal HTTP/1.1 exchange for plain GET and HEAD checks: send, read the head, close.

Why a second path next to aiohttp: most monitors are a GET that only needs the
status code. For those, aiohttp's client (session, request and response objects,
connector, happy-eyeballs socket set-up, payload machinery) was half of the probe
worker's CPU per check; this path writes one request and parses the status line
and headers of the answer, and nothing else. Checks that need more (a method with
a body, a keyword, so a body to read) stay on aiohttp; ``engine.plain_get`` says
which is which.

The SSRF guard is not weakened: this module only ever connects to ``addresses``
given by the caller, which are the answers of ``guard.resolve_allowed`` for this
very hop (every answer checked, IP literals included, DNS asked again per hop), the
same rule ``GuardedConnector`` applies to aiohttp's connections.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# Status line and headers; a larger head is not a health check's business.
MAX_HEAD_BYTES = 64 * 1024


class InvalidHead(Exception):
    """The target answered with something that is not an HTTP/1.x response head."""


@dataclass(frozen=True, slots=True)
class Head:
    status: int
    reason: str
    location: str | None
    connect_ms: float
    connected_at: float  # perf_counter when the connection (and TLS) was ready
    ssl_object: Any


class _HeadReader(asyncio.Protocol):
    """Collects bytes until the blank line that ends the response head."""

    def __init__(self, done: asyncio.Future[bytes]) -> None:
        self.done = done
        self.buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        if self.done.done():
            return
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = bytes(self.buffer[:end])
            if not _interim(head):
                self.done.set_result(head)
                return
            del self.buffer[: end + 4]  # 100 Continue, 103 Early Hints: the answer follows
        if len(self.buffer) > MAX_HEAD_BYTES:
            self.done.set_exception(InvalidHead(f"response head over {MAX_HEAD_BYTES} bytes"))

    def eof_received(self) -> bool:
        self._fail(ConnectionResetError("connection closed before the response head"))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(exc or ConnectionResetError("connection closed before the response head"))

    def _fail(self, exc: BaseException) -> None:
        if not self.done.done():
            self.done.set_exception(exc)


def _interim(head: bytes) -> bool:
    """An informational (1xx) head other than 101, which a GET never asks for."""
    return head.startswith(b"HTTP/1.") and head[9:10] == b"1" and head[9:12] != b"101"


def request_bytes(method: str, target: str, host: str, headers: Sequence[tuple[str, str]]) -> bytes:
    """The request: ``headers`` must already be checked (``header_safe``)."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers]
    lines += ["Connection: close", "", ""]
    return "\r\n".join(lines).encode("latin-1")


def header_safe(name: str, value: str) -> bool:
    """A header we can write as is: no line breaks or NULs, Latin-1, a token name."""
    if not name or any(c in name for c in ' \t\r\n:\0"(),/;<=>?@[\\]{}'):
        return False
    if any(c in value for c in "\r\n\0"):
        return False
    try:
        (name + value).encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


async def fetch_head(
    *,
    addresses: Sequence[str],
    port: int,
    request: bytes,
    ssl_context: ssl.SSLContext | None,
    server_hostname: str | None,
) -> Head:
    """Connect to the first of ``addresses`` that accepts, send ``request``, parse the
    head of the answer and close. The caller's deadline bounds all of it."""
    loop = asyncio.get_running_loop()
    began = time.perf_counter()
    transport, done = await _connect_first(loop, addresses, port, ssl_context, server_hostname)
    try:
        connected_at = time.perf_counter()
        ssl_object = transport.get_extra_info("ssl_object")
        transport.write(request)
        raw = await done
    finally:
        transport.close()
    status, reason, location = parse_head(raw)
    return Head(status, reason, location, (connected_at - began) * 1000, connected_at, ssl_object)


async def _connect_first(
    loop: asyncio.AbstractEventLoop,
    addresses: Sequence[str],
    port: int,
    ssl_context: ssl.SSLContext | None,
    server_hostname: str | None,
) -> tuple[asyncio.Transport, asyncio.Future[bytes]]:
    last: OSError | None = None
    for address in addresses:
        done: asyncio.Future[bytes] = loop.create_future()
        try:
            transport, _ = await loop.create_connection(
                lambda done=done: _HeadReader(done),
                address,
                port,
                ssl=ssl_context,
                server_hostname=server_hostname,
            )
            return transport, done
        except OSError as exc:
            last = exc
            if isinstance(exc, ssl.SSLError):
                break  # the certificate is the target's answer, not a bad address
    raise last or OSError("no address to connect to")


def parse_head(raw: bytes) -> tuple[int, str, str | None]:
    """Status code, reason and Location of a response head (``InvalidHead`` if bad).

    The Location is decoded as UTF-8 with ``surrogateescape``, as aiohttp's parser
    decodes header values, so a Location with raw UTF-8 bytes reads as the text it is
    (not as Latin-1, which percent-encoded it again into a path that does not exist)
    and both paths resolve it alike (``redirects.resolve_location``).
    """
    status_line, _, rest = raw.partition(b"\r\n")
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise InvalidHead(f"bad status line {status_line[:60]!r}")
    status = int(parts[1])
    if not 100 <= status <= 599:
        raise InvalidHead(f"bad status code {status}")
    reason = parts[2].decode("latin-1").strip() if len(parts) == 3 else ""
    location = None
    for line in rest.split(b"\r\n"):
        name, colon, value = line.partition(b":")
        if colon and name.strip().lower() == b"location":
            location = value.strip().decode("utf-8", "surrogateescape")
    return status, reason, location
