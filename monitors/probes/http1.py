"""A minimal HTTP/1.1 exchange for plain GET and HEAD checks: send, read, close.

Why a second path next to aiohttp: most monitors are a GET that only needs the
status code, or the status code and a keyword. For those, aiohttp's client (session,
request and response objects, connector, happy-eyeballs socket set-up, payload
machinery) was half of the probe worker's CPU per check; this path writes one
request, parses the status line and headers of the answer and, for a keyword or JSON
assertions, hands the content to the caller's reader (``page.PageChecks``) as it
arrives, undoing the framing (``Content-Length``, chunked, or up to the close) and gzip
or deflate.
Checks that need more (a method with a body) stay on aiohttp; ``engine.plain_get``
says which is which.

The SSRF guard is not weakened: this module only ever connects to ``addresses``
given by the caller, which are the answers of ``guard.resolve_allowed`` for this
very hop (every answer checked, IP literals included, DNS asked again per hop), the
same rule ``GuardedConnector`` applies to aiohttp's connections.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from core.netpolicy import TargetPolicy

# Status line and headers; a larger head is not a health check's business.
MAX_HEAD_BYTES = 64 * 1024
# A chunk-size line or a trailer field longer than this is not HTTP.
MAX_CHUNK_LINE_BYTES = 4096
# What one step of inflation may produce: a gzip bomb of a few kilobytes unpacks to
# gigabytes, and the page reader stops long before (its cap), so it goes in steps.
INFLATE_STEP_BYTES = 64 * 1024
# Statuses whose responses have no content, whatever their headers say (RFC 9112 §6.3).
NO_CONTENT_STATUSES = frozenset({204, 304})
# zlib's window bits per content coding: gzip only; zlib or gzip told by their header
# for "deflate" (which RFC 9110 says is zlib; some servers send gzip under that name).
_INFLATE_WBITS = {
    "gzip": 16 + zlib.MAX_WBITS,
    "x-gzip": 16 + zlib.MAX_WBITS,
    "deflate": 32 + zlib.MAX_WBITS,
}


class InvalidResponse(Exception):
    """The target answered with something that is not a valid HTTP/1.x response."""


class InvalidHead(InvalidResponse):
    """The status line or header fields are not HTTP/1.x."""


class InvalidBody(InvalidResponse):
    """The content is cut short, or framed or coded in a way this path cannot read."""


class PageReader(Protocol):
    """Takes a response's content; ``page.PageChecks`` (a keyword search, JSON
    assertions) is one."""

    def feed(self, data: bytes) -> bool:
        """The next bytes of content; returns True when no more are needed."""

    def end(self) -> None:
        """The content ended."""


# Called with the final response's status and header fields (names in lower case);
# returns a reader for its content, or None to read the head only.
PageFor = Callable[[int, Mapping[str, str]], PageReader | None]


@dataclass(frozen=True, slots=True)
class Head:
    status: int
    reason: str
    headers: Mapping[str, str]  # names in lower case; a repeated field keeps its last value
    connect_ms: float
    connected_at: float  # perf_counter when the connection (and TLS) was ready
    answered_at: float  # perf_counter when the head had arrived (content may follow)
    ssl_object: Any

    @property
    def location(self) -> str | None:
        return self.headers.get("location")


class _Answer(NamedTuple):
    status: int
    reason: str
    headers: dict[str, str]
    answered_at: float


class _ResponseReader(asyncio.Protocol):
    """Collects bytes until the blank line that ends the response head; then, if
    ``page_for`` asks for it, passes the content to its reader until the reader has
    enough or the content ends. ``done`` resolves to the final response's head."""

    def __init__(self, done: asyncio.Future[_Answer], page_for: PageFor | None) -> None:
        self.done = done
        self.page_for = page_for
        self.buffer = bytearray()
        self.answer: _Answer | None = None
        self.content: _Content | None = None

    def data_received(self, data: bytes) -> None:
        if self.done.done():
            return
        try:
            if self.content is None:
                self._head_received(data)
            elif self.content.feed(data):
                self._resolve()
        except Exception as exc:  # a protocol callback must not raise: the check fails
            self.done.set_exception(exc)

    def _head_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            raw = bytes(self.buffer[:end])
            del self.buffer[: end + 4]
            if _interim(raw):
                continue  # 100 Continue, 103 Early Hints: the answer follows
            status, reason, headers = parse_head(raw)
            self.answer = _Answer(status, reason, headers, time.perf_counter())
            reader = self.page_for(status, headers) if self.page_for else None
            if reader is None:
                self._resolve()
                return
            self.content = _Content(status, headers, reader)
            rest, self.buffer = bytes(self.buffer), bytearray()
            if self.content.feed(rest):
                self._resolve()
            return
        if len(self.buffer) > MAX_HEAD_BYTES:
            raise InvalidHead(f"response head over {MAX_HEAD_BYTES} bytes")

    def _resolve(self) -> None:
        if not self.done.done() and self.answer is not None:
            self.done.set_result(self.answer)

    def eof_received(self) -> bool:
        self._closed(None)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed(exc)

    def _closed(self, exc: Exception | None) -> None:
        if self.done.done():
            return
        if self.content is None or exc is not None:
            self.done.set_exception(
                exc or ConnectionResetError("connection closed before the response head")
            )
            return
        try:
            self.content.close()
        except Exception as error:  # cut short: the check fails, as on aiohttp's path
            self.done.set_exception(error)
        else:
            self._resolve()


class _Content:
    """Undoes the framing (RFC 9112 §6.3: chunked, ``Content-Length``, or up to the
    close) and the content coding (gzip, deflate) of one response, passing what is left
    to ``reader``. ``feed`` returns True once the reader has enough or the content is
    complete; ``close`` says the connection ended."""

    def __init__(self, status: int, headers: Mapping[str, str], reader: PageReader) -> None:
        self.reader = reader
        coding = headers.get("content-encoding", "").strip().lower()
        self.inflate: zlib._Decompress | None = None
        if coding in _INFLATE_WBITS:
            self.inflate = zlib.decompressobj(_INFLATE_WBITS[coding])
        elif coding not in ("", "identity"):
            raise InvalidBody(f"content coding {coding!r} is not supported")
        self.remaining: int | None = None  # bytes of content (or of this chunk) still due
        self.chunked = headers.get("transfer-encoding", "").lower().endswith("chunked")
        self.chunk_state = "size"  # size, data, data-end, trailer
        self.pending = bytearray()  # chunk-size lines and trailers not yet complete
        self.complete = False
        if status in NO_CONTENT_STATUSES:
            self._finish()
        elif not self.chunked and "content-length" in headers:
            try:
                self.remaining = int(headers["content-length"])
            except ValueError:
                raise InvalidBody("bad Content-Length") from None
            if self.remaining == 0:
                self._finish()

    def feed(self, data: bytes) -> bool:
        if self.complete:
            return True
        if self.chunked:
            return self._chunked(data)
        if self.remaining is not None:
            data = data[: self.remaining]
            self.remaining -= len(data)
            if self._deliver(data):
                return True
            if self.remaining == 0:
                self._finish()
            return self.complete
        return self._deliver(data)  # delimited by the close

    def close(self) -> None:
        if self.complete:
            return
        if self.chunked or self.remaining:
            raise InvalidBody("connection closed before the end of the content")
        self._finish()

    def _chunked(self, data: bytes) -> bool:
        self.pending += data
        while not self.complete:
            if self.chunk_state == "data":
                if not self.pending:
                    return False
                assert self.remaining is not None
                piece = bytes(self.pending[: self.remaining])
                del self.pending[: len(piece)]
                self.remaining -= len(piece)
                if self.remaining == 0:
                    self.chunk_state = "data-end"
                if self._deliver(piece):
                    return True
                continue
            end = self.pending.find(b"\r\n")
            if end < 0:
                if len(self.pending) > MAX_CHUNK_LINE_BYTES:
                    raise InvalidBody("chunk line too long")
                return False
            line = bytes(self.pending[:end])
            del self.pending[: end + 2]
            self._chunk_line(line)
        return True

    def _chunk_line(self, line: bytes) -> None:
        if self.chunk_state == "size":
            try:
                size = int(line.partition(b";")[0].strip(), 16)
            except ValueError:
                raise InvalidBody(f"bad chunk size {line[:20]!r}") from None
            self.chunk_state, self.remaining = ("data", size) if size else ("trailer", None)
        elif self.chunk_state == "data-end":
            if line:
                raise InvalidBody("chunk longer than its size")
            self.chunk_state = "size"
        elif not line:  # the blank line after the trailer fields ends the message
            self._finish()

    def _deliver(self, data: bytes) -> bool:
        """Content bytes to the reader, inflated in bounded steps; True when it has enough."""
        if self.inflate is None:
            return bool(data) and self.reader.feed(data)
        while data:
            try:
                page = self.inflate.decompress(data, INFLATE_STEP_BYTES)
            except zlib.error as exc:
                raise InvalidBody(f"bad compressed content: {exc}") from None
            if page and self.reader.feed(page):
                return True
            data = self.inflate.unconsumed_tail
        return False

    def _finish(self) -> None:
        self.complete = True
        if self.inflate is not None:
            rest = self.inflate.flush()
            if rest and self.reader.feed(rest):
                return
        self.reader.end()


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


async def fetch(
    *,
    addresses: Sequence[str],
    port: int,
    request: bytes,
    ssl_context: ssl.SSLContext | None,
    server_hostname: str | None,
    page_for: PageFor | None = None,
    policy: TargetPolicy | None = None,
) -> Head:
    """Connect to the first of ``addresses`` that accepts, send ``request``, parse the
    head of the answer, pass its content to ``page_for``'s reader if it returns one
    (until the reader has enough or the content ends), and close. Raises
    ``InvalidResponse`` for an answer that is not HTTP/1.x, ``OSError`` for the
    connection's faults; the caller's deadline bounds all of it."""
    loop = asyncio.get_running_loop()
    began = time.perf_counter()
    transport, done = await _connect_first(
        loop, addresses, port, ssl_context, server_hostname, page_for, policy
    )
    try:
        connected_at = time.perf_counter()
        ssl_object = transport.get_extra_info("ssl_object")
        transport.write(request)
        answer = await done
    finally:
        transport.close()
    connect_ms = (connected_at - began) * 1000
    return Head(
        answer.status,
        answer.reason,
        answer.headers,
        connect_ms,
        connected_at,
        answer.answered_at,
        ssl_object,
    )


async def _connect_first(
    loop: asyncio.AbstractEventLoop,
    addresses: Sequence[str],
    port: int,
    ssl_context: ssl.SSLContext | None,
    server_hostname: str | None,
    page_for: PageFor | None,
    policy: TargetPolicy | None,
) -> tuple[asyncio.Transport, asyncio.Future[_Answer]]:
    last: OSError | None = None
    for address in addresses:
        done: asyncio.Future[_Answer] = loop.create_future()
        try:
            transport, _ = await loop.create_connection(
                lambda done=done: _ResponseReader(done, page_for),
                address,
                port,
                ssl=ssl_context,
                server_hostname=server_hostname,
                local_addr=policy.local_addr(address) if policy else None,
            )
            return transport, done
        except OSError as exc:
            last = exc
            if isinstance(exc, ssl.SSLError):
                break  # the certificate is the target's answer, not a bad address
    raise last or OSError("no address to connect to")


def parse_head(raw: bytes) -> tuple[int, str, dict[str, str]]:
    """Status code, reason and header fields of a response head (``InvalidHead`` if bad).

    Field names come back in lower case; values are decoded as UTF-8 with
    ``surrogateescape``, as aiohttp's parser decodes them, so a ``Location`` with raw
    UTF-8 bytes reads as the text it is and both paths resolve it alike
    (``redirects.resolve_location``).
    """
    status_line, _, rest = raw.partition(b"\r\n")
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise InvalidHead(f"bad status line {status_line[:60]!r}")
    status = int(parts[1])
    if not 100 <= status <= 599:
        raise InvalidHead(f"bad status code {status}")
    reason = parts[2].decode("latin-1").strip() if len(parts) == 3 else ""
    headers: dict[str, str] = {}
    for line in rest.split(b"\r\n"):
        name, colon, value = line.partition(b":")
        if colon:
            key = name.strip().lower().decode("latin-1")
            headers[key] = value.strip().decode("utf-8", "surrogateescape")
    return status, reason, headers
