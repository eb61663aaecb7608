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

Run it alone: ``python -m benchmarks.farm --port 18090 --processes 2``.
"""

from __future__ import annotations

import argparse
import asyncio
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


def _app() -> object:
    from aiohttp import web

    async def target(request: web.Request) -> web.Response:
        try:
            n = int(request.match_info["n"])
        except ValueError:
            return web.Response(status=404)
        b = behaviour(n)
        if b.delay_s:
            await asyncio.sleep(b.delay_s)
        if b.status != 200:
            return web.Response(status=b.status, body=b"farm target: failing on purpose")
        return web.Response(body=OK_BODY, content_type="text/html")

    app = web.Application()
    app.router.add_get("/t/{n}", target)
    return app


def serve(port: int) -> None:
    """Serve forever on ``port`` (SO_REUSEPORT: several processes share the port)."""
    from aiohttp import web

    web.run_app(
        _app(),  # type: ignore[arg-type]
        host=HOST,
        port=port,
        reuse_port=True,
        access_log=None,
        print=None,
        handle_signals=True,
        backlog=4096,
    )


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
