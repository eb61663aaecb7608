"""The target farm: a fast loopback HTTP server with many paths of known behaviour.

Path ``/t/<n>`` always behaves the same way, decided by ``n`` alone, so a benchmark
knows the right outcome of every check in advance:

| share | behaviour | expected result |
| --- | --- | --- |
| 80 % | 200 after 10-100 ms | ok |
| 12 % | 200 after 100-1000 ms | ok |
| 5 % | 500, 502 or 503 | failure ``status`` |
| 2 % | hangs far past any check timeout | failure ``timeout`` |
| 1 % | the port refuses connections | failure ``refused`` |

The refused paths point at a port the farm holds bound but never listens on, so
nothing else can take it. Every target is on 127.0.0.1.

Path ``/k/<n>`` behaves as ``/t/<n>``, but its 200 answers are a 1 MiB page that ends
with ``PAGE_KEYWORD``: the whole page must be read to find it (``probe_cpu
--keyword-1mib`` measures what a keyword check costs).

The server is a raw asyncio protocol on uvloop, not an aiohttp app: it shares the
two cores with the pipeline it measures, and aiohttp's server cost ~0.65 ms of CPU
per request, as much as the probe worker's whole check. It reads the request line,
answers after the path's delay with ``Connection: close`` and closes.

**Fault windows** (the regions benchmark): with ``BENCH_FARM_FAULT_FILE`` set, the farm
looks at that file every ``FAULT_POLL_S`` and reads it again when it changed: a JSON
``{"from": "127.0.0.4", "windows": {"<n>": [start, end], ...}}`` (epoch seconds) makes
every request for path ``n`` from that caller address that arrives between its
``start`` and ``end`` answer 503 at once, so one simulated region's path to the
targets fails while the others' does not. The windows are per path so that a
benchmark can put their edges between a monitor's slots (``fault_write``): a window
shared by every path would fall in the middle of some check, whose request reaches
the farm a few milliseconds after the check started, on either side of the edge.

Run it alone: ``python -m benchmarks.farm --port 18090 --processes 2``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

HOST = "127.0.0.1"
HANG_SECONDS = 120.0
OK_BODY = b"<html><body>farm target: operational</body></html>"
PAGE_KEYWORD = "farm page: operational to the end"
PAGE_BYTES = 1 << 20


@dataclass(frozen=True)
class Behaviour:
    kind: str  # "fast", "slow", "error", "hang", "refused"
    delay_s: float = 0.0
    status: int = 200

    @property
    def expect_ok(self) -> bool:
        return self.kind in ("fast", "slow")

    @property
    def expect_failure(self) -> str | None:
        return {"error": "status", "hang": "timeout", "refused": "refused"}.get(self.kind)


def behaviour(n: int) -> Behaviour:
    """The fixed behaviour of path ``/t/<n>`` (a cheap integer hash picks it)."""
    h = (n * 2654435761) & 0xFFFFFFFF
    bucket, spread = h % 100, (h >> 8) % 1000 / 1000
    if bucket < 80:
        return Behaviour("fast", 0.010 + 0.090 * spread)
    if bucket < 92:
        return Behaviour("slow", 0.100 + 0.900 * spread)
    if bucket < 97:
        return Behaviour("error", 0.0, (500, 502, 503)[h % 3])
    if bucket < 99:
        return Behaviour("hang", HANG_SECONDS)
    return Behaviour("refused")


@dataclass(frozen=True)
class Farm:
    port: int
    refused_port: int

    def url(self, n: int) -> str:
        port = self.refused_port if behaviour(n).kind == "refused" else self.port
        return f"http://{HOST}:{port}/t/{n}"

    def page_url(self, n: int) -> str:
        """``url(n)``, but a 200 is the 1 MiB page that ends with ``PAGE_KEYWORD``."""
        return self.url(n).replace("/t/", "/k/")


_REASONS = {200: b"OK", 404: b"Not Found", 500: b"Internal Server Error",
            502: b"Bad Gateway", 503: b"Service Unavailable"}  # fmt: skip
MAX_REQUEST_HEAD = 16 * 1024


def _response(status: int, body: bytes | None = None) -> bytes:
    if body is None:
        body = OK_BODY if status == 200 else b"farm target: failing on purpose"
    head = (
        b"HTTP/1.1 %d %s\r\nContent-Type: text/html\r\nContent-Length: %d\r\n"
        b"Connection: close\r\n\r\n" % (status, _REASONS[status], len(body))
    )
    return head + body


def _page() -> bytes:
    """``PAGE_BYTES`` of plain HTML whose last words are ``PAGE_KEYWORD``."""
    end = f"<p>{PAGE_KEYWORD}</p></body></html>".encode()
    line = b"<p>farm page filler, nothing to see here, keep reading</p>\n"
    start = b"<html><head><meta charset=utf-8></head><body>\n"
    filler = line * ((PAGE_BYTES - len(start) - len(end)) // len(line) + 1)
    return start + filler[: PAGE_BYTES - len(start) - len(end)] + end


RESPONSES = {status: _response(status) for status in _REASONS}
PAGE_RESPONSE = _response(200, _page())


FAULT_POLL_S = 0.5
# (caller address, path -> (start, end) epoch s) in force, read from the fault file.
_fault: tuple[str, dict[int, tuple[float, float]]] | None = None
_fault_stamp: tuple[int, int] | None = None  # the fault file's (mtime ns, size) when read


def fault_write(path: str, *, caller: str, windows: dict[int, tuple[float, float]]) -> None:
    """Write the fault file the farm reads: requests from ``caller`` for path ``n``
    arriving in ``windows[n]`` (``(start, end)``, epoch seconds) answer 503. Replaced
    in one step, so that the farm never reads half of it."""
    spec = {"from": caller, "windows": {str(n): list(w) for n, w in windows.items()}}
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(spec, handle)
    os.replace(temporary, path)


def fault_read(path: str) -> None:
    """Load the fault windows from ``path`` when it changed since the last read (none if
    it is absent or unreadable)."""
    global _fault, _fault_stamp
    try:
        stat = os.stat(path)
    except OSError:
        _fault, _fault_stamp = None, None
        return
    if (stat.st_mtime_ns, stat.st_size) == _fault_stamp:
        return
    _fault_stamp = (stat.st_mtime_ns, stat.st_size)
    try:
        with open(path, encoding="utf-8") as handle:
            spec = json.load(handle)
        windows = {int(n): (float(a), float(b)) for n, (a, b) in spec["windows"].items()}
        _fault = (str(spec["from"]), windows)
    except (OSError, ValueError, KeyError, TypeError):
        _fault = None


def _faulty(transport: asyncio.Transport | None, n: int | None) -> bool:
    """Whether this request for path ``n``, arriving now, is in its caller's fault."""
    if _fault is None or transport is None or n is None:
        return False
    caller, windows = _fault
    peer = transport.get_extra_info("peername")
    if not peer or peer[0] != caller or n not in windows:
        return False
    start, end = windows[n]
    return start <= time.time() < end


class TargetProtocol(asyncio.Protocol):
    """One connection: read the request head, answer as ``/t/<n>`` behaves, close."""

    def __init__(self) -> None:
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.pending: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.pending is not None or self.transport is None:
            return
        self.buffer += data
        if b"\r\n\r\n" not in self.buffer:
            if len(self.buffer) > MAX_REQUEST_HEAD:
                self.transport.close()
            return
        response, delay, n = _route(self.buffer.split(b"\r\n", 1)[0])
        if _faulty(self.transport, n):
            response, delay = RESPONSES[503], 0.0
        if delay:
            loop = asyncio.get_running_loop()
            self.pending = loop.call_later(delay, self._answer, response)
        else:
            self._answer(response)

    def _answer(self, response: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(response)
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.pending is not None:
            self.pending.cancel()
        self.transport = None


def _route(request_line: bytes) -> tuple[bytes, float, int | None]:
    """Response, delay and path number for ``GET /t/<n> HTTP/1.1`` (or ``/k/<n>``); 404
    and no number for anything else."""
    parts = request_line.split(b" ")
    path = parts[1] if len(parts) == 3 else b""
    if path[:3] not in (b"/t/", b"/k/") or not path[3:].isdigit():
        return RESPONSES[404], 0.0, None
    n = int(path[3:])
    b = behaviour(n)
    if b.status == 200 and path.startswith(b"/k/"):
        return PAGE_RESPONSE, b.delay_s, n
    return RESPONSES[b.status], b.delay_s, n


def serve(port: int) -> None:
    """Serve forever on ``port`` (SO_REUSEPORT: several processes share the port)."""
    import uvloop

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        watching = None
        if fault_file := os.environ.get("BENCH_FARM_FAULT_FILE"):
            watching = loop.create_task(_watch_faults(fault_file, stop))
        server = await loop.create_server(TargetProtocol, HOST, port, reuse_port=True, backlog=4096)
        async with server:
            await stop.wait()
        if watching is not None:
            watching.cancel()

    uvloop.run(main())


async def _watch_faults(path: str, stop: asyncio.Event) -> None:
    while not stop.is_set():
        fault_read(path)
        await asyncio.sleep(FAULT_POLL_S)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@contextmanager
def farm_running(*, processes: int = 1, port: int = 0) -> Iterator[tuple[Farm, list[int]]]:
    """Start the farm in ``processes`` child processes; yields the farm and their pids."""
    port = port or free_port()
    # Bound and never listening: connections to it are refused, and it stays ours.
    holder = socket.socket()
    holder.bind((HOST, 0))
    refused_port = holder.getsockname()[1]
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "benchmarks.farm", "--port", str(port)],
            stdout=subprocess.DEVNULL,
        )
        for _ in range(processes)
    ]
    try:
        _wait_until_up(port)
        yield Farm(port, refused_port), [child.pid for child in children]
    finally:
        for child in children:
            child.send_signal(signal.SIGINT)
        for child in children:
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
        holder.close()


def _wait_until_up(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the target farm did not start on port {port}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=18090)
    parser.add_argument("--processes", type=int, default=1)
    args = parser.parse_args()
    if args.processes > 1:
        with farm_running(processes=args.processes, port=args.port) as (farm, _):
            print(f"farm on http://{HOST}:{farm.port}/t/<n>  (refused port {farm.refused_port})")
            signal.sigwait({signal.SIGINT, signal.SIGTERM})
    else:
        print(f"farm on http://{HOST}:{args.port}/t/<n> (pid {os.getpid()})", flush=True)
        serve(args.port)


if __name__ == "__main__":
    main()
