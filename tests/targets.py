"""Local targets for the probe tests: real servers on 127.0.0.1, port 0.

One aiohttp app with a path per behaviour, served from a background thread so that
both async engine tests and sync task/command tests can use it.
"""

from __future__ import annotations

import asyncio
import codecs
import json
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

BODY = "<html><body>status: all systems operational</body></html>"

# Status pages in the encodings that tripped the checker (GBK, Shift-JIS,
# Windows-1251), each declaring its encoding in one of the ways a browser reads.
_ZH = "<h1>服务状态</h1><p>所有系统运行正常。我们的服务对所有用户可用。</p>"
_JA = "<h1>サービスの状態</h1><p>すべてのシステムは正常に稼働しています。ご利用いただけます。</p>"
_RU = "<h1>Состояние сервиса</h1><p>Все системы работают нормально. Сбоев не обнаружено.</p>"  # noqa: RUF001


def _html(body: str, head: str = "") -> str:
    return f"<!DOCTYPE html><html><head>{head}<title>up</title></head><body>{body}</body></html>"


@dataclass(frozen=True)
class EncodedPage:
    content_type: str
    body: bytes
    keyword: str  # a word on the page, as a person would type it


ENCODED_PAGES = {
    "header charset": EncodedPage(
        "text/html; charset=GBK", _html(_ZH).encode("gbk"), "系统运行正常"
    ),
    "byte-order mark": EncodedPage(
        "text/html", codecs.BOM_UTF16_LE + _html(_JA).encode("utf-16-le"), "正常に稼働"
    ),
    "byte-order mark beats the header": EncodedPage(
        "text/html; charset=windows-1252", codecs.BOM_UTF8 + _html(_RU).encode(), "работают"
    ),
    "meta charset": EncodedPage(
        "text/html", _html(_JA, '<meta charset="Shift_JIS">').encode("shift_jis"), "正常に稼働"
    ),
    "meta http-equiv": EncodedPage(
        "text/html",
        _html(
            _RU, '<meta http-equiv="Content-Type" content="text/html; charset=windows-1251">'
        ).encode("cp1251"),
        "работают",
    ),
    "no declaration, sniffed": EncodedPage("text/html", _html(_ZH).encode("gbk"), "系统运行正常"),
    "header contradicts the document": EncodedPage(
        "text/html; charset=windows-1251",
        _html(_RU, '<meta charset="utf-8">').encode("cp1251"),
        "работают",
    ),
}

# JSON bodies for the assertion tests, served by ``/json?name=…`` (``&gzip=1`` compresses).
STATUS_DOCUMENT = {
    "status": {"indicator": "none", "description": "All Systems Operational"},
    "components": [
        {"name": "API", "status": "operational"},
        {"name": "Web", "status": "degraded_performance"},
    ],
    "latency_ms": 120,
    "healthy": True,
    "count": 0,
    "version": "2.4.1",
    "regions": ["eu", "us"],
    "error": None,
}
JSON_DOCUMENTS = {
    "status": ("application/json", json.dumps(STATUS_DOCUMENT).encode()),
    "latin-1": ("application/json; charset=iso-8859-1", '{"city": "Zürich"}'.encode("latin-1")),
    "utf-16": ("application/json", codecs.BOM_UTF16_LE + '{"city": "東京"}'.encode("utf-16-le")),
    "html": ("text/html", BODY.encode()),
    "empty": ("application/json", b""),
    # Over the 64 KiB an encoding is guessed from, with a character across its end.
    "long-utf-8": (
        "application/json",
        ('{"pad": "' + "x" * (64 * 1024 - 10) + 'é", "city": "Zürich"}').encode(),
    ),
}

# A page that redirects with each form of Location, and where a browser lands:
# ``/from/<form>/page`` answers 302 with the Location; only the landing target answers
# 200 (anything else 404). ``{port}`` is the lab's own port.
REDIRECT_FORMS = {
    "absolute": (b"http://127.0.0.1:{port}/land/absolute", "/land/absolute"),
    "scheme-relative": (b"//127.0.0.1:{port}/land/scheme-relative", "/land/scheme-relative"),
    "root-relative": (b"/land/root-relative", "/land/root-relative"),
    "relative": (b"sibling", "/from/relative/sibling"),
    "dot-dot": (b"../../land/dot-dot", "/land/dot-dot"),
    "query-only": (b"?step=2", "/from/query-only/page?step=2"),
    "spaces": (b"/land/with space?q=a b", "/land/with%20space?q=a%20b"),
    "raw-utf-8": (
        "/land/café/日本?q=é".encode(),
        "/land/caf%C3%A9/%E6%97%A5%E6%9C%AC?q=%C3%A9",
    ),
    "raw-bytes-not-utf-8": (b"/land/caf\xe9", "/land/caf%E9"),
    "percent-encoded": (b"/land/caf%C3%A9?q=%C3%A9", "/land/caf%C3%A9?q=%C3%A9"),
    "fragment": (b"/land/fragment#section-2", "/land/fragment"),
}


def target_app() -> web.Application:
    async def ok(request: web.Request) -> web.Response:
        return web.Response(text=BODY, content_type="text/html")

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(float(request.query.get("s", "0.3")))
        return web.Response(text=BODY)

    async def hang(request: web.Request) -> web.Response:
        await asyncio.sleep(3600)
        return web.Response(text="never")

    async def status(request: web.Request) -> web.Response:
        return web.Response(status=int(request.match_info["code"]), text="error page")

    async def vhost(request: web.Request) -> web.Response:
        # Answers only for the virtual host named in the path, as a shared server would.
        wanted = request.match_info["name"]
        if request.host.split(":")[0] != wanted:
            return web.Response(status=421, text=f"no virtual host {request.host}")
        return web.Response(text=f"{BODY} ({wanted})", content_type="text/html")

    async def loop(request: web.Request) -> web.Response:
        raise web.HTTPFound("/loop")

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound(request.query["to"])

    async def echo(request: web.Request) -> web.Response:
        body = await request.text()
        return web.json_response(
            {"method": request.method, "body": body, "x": request.headers.get("X-Probe", "")}
        )

    async def big(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        chunk = b"x" * 65536
        for _ in range(200):  # 13 MB: the checker must stop reading long before
            await response.write(chunk)
        await response.write(b"needle")
        return response

    async def page(request: web.Request) -> web.Response:
        page = ENCODED_PAGES[request.query["name"]]
        return web.Response(body=page.body, headers={"Content-Type": page.content_type})

    async def long(request: web.Request) -> web.StreamResponse:
        """``size`` bytes of filler with ``word`` (UTF-8) at byte ``at``, sent chunked in
        64 KiB writes, with a pause at byte ``split`` so that the checker's reads end
        there (a keyword or a character cut between two reads)."""
        size, at = int(request.query["size"]), int(request.query["at"])
        word = request.query["word"].encode()
        page = b"x" * at + word + b"x" * max(0, size - at - len(word))
        split = int(request.query.get("split", len(page)))
        response = web.StreamResponse(headers={"Content-Type": "text/html; charset=utf-8"})
        await response.prepare(request)
        for start, end in ((0, split), (split, len(page))):
            for offset in range(start, end, 65536):
                await response.write(page[offset : min(offset + 65536, end)])
            await asyncio.sleep(0.05)
        await response.write_eof()
        return response

    async def json_document(request: web.Request) -> web.Response:
        content_type, body = JSON_DOCUMENTS[request.query["name"]]
        response = web.Response(body=body, headers={"Content-Type": content_type})
        if request.query.get("gzip"):
            response.enable_compression(force=web.ContentCoding.gzip)
        return response

    async def drop(request: web.Request) -> web.Response:
        assert request.transport is not None
        request.transport.close()  # hang up without an answer
        await asyncio.sleep(1)
        return web.Response(text="never")

    async def by_caller(request: web.Request) -> web.Response:
        # 503 to the callers whose addresses the path names (comma-separated), 200 to
        # the others: a region simulated on 127.0.0.x sees a failure the others do not.
        failing = request.match_info["failing"].split(",")
        if request.remote in failing:
            return web.Response(status=503, text=f"down for {request.remote}")
        return web.Response(text=BODY, content_type="text/html")

    app = web.Application()
    app.router.add_get("/drop", drop)
    app.router.add_get("/caller/{failing}", by_caller)
    app.router.add_route("*", "/ok", ok)
    app.router.add_get("/slow", slow)
    app.router.add_get("/hang", hang)
    app.router.add_get("/status/{code}", status)
    app.router.add_get("/loop", loop)
    app.router.add_route("*", "/vhost/{name}", vhost)
    app.router.add_get("/redirect", redirect)
    app.router.add_route("*", "/echo", echo)
    app.router.add_get("/big", big)
    app.router.add_get("/page", page)
    app.router.add_get("/long", long)
    app.router.add_route("*", "/json", json_document)
    return app


class RedirectLab(asyncio.Protocol):
    """A raw HTTP/1.1 server for ``REDIRECT_FORMS``: it writes each Location's bytes as
    they are (an aiohttp server would encode them), and notes every request target."""

    def __init__(self, requested: list[str]) -> None:
        self.requested = requested
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if b"\r\n\r\n" not in self.buffer or self.transport is None:
            return
        target = self.buffer.split(b" ", 2)[1].decode("latin-1")
        self.requested.append(target)
        port = self.transport.get_extra_info("sockname")[1]
        head = b"HTTP/1.1 404 Not Found\r\n"
        for form, (location, landing) in REDIRECT_FORMS.items():
            if target == f"/from/{form}/page":
                location = location.replace(b"{port}", str(port).encode())
                head = b"HTTP/1.1 302 Found\r\nLocation: " + location + b"\r\n"
            elif target == landing:
                head = b"HTTP/1.1 200 OK\r\n"
        self.transport.write(head + b"Content-Length: 0\r\nConnection: close\r\n\r\n")
        self.transport.close()


@dataclass
class Target:
    port: int
    tls_port: int
    lab_port: int
    lab_requested: list[str]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def tls_url(self, path: str) -> str:
        return f"https://localhost:{self.tls_port}{path}"

    def lab_url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.lab_port}{path}"


@contextmanager
def serve_targets(ssl_context: ssl.SSLContext | None) -> Iterator[Target]:
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    ports: list[int] = []
    requested: list[str] = []
    servers: list[asyncio.Server] = []
    runner = web.AppRunner(
        target_app(), handle_signals=False, shutdown_timeout=0.5, access_log=None
    )

    async def start() -> None:
        await runner.setup()
        for context in (None, ssl_context):
            site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
            await site.start()
            ports.append(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        lab = await asyncio.get_running_loop().create_server(
            lambda: RedirectLab(requested), "127.0.0.1", 0
        )
        servers.append(lab)
        ports.append(lab.sockets[0].getsockname()[1])

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="test-targets", daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield Target(ports[0], ports[1], ports[2], requested)
    finally:
        asyncio.run_coroutine_threadsafe(_stop(runner, servers), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


async def _stop(runner: web.AppRunner, servers: list[asyncio.Server]) -> None:
    for server in servers:
        server.close()
    await runner.cleanup()
    # Handlers still sleeping (the hanging path) are cancelled, not left pending.
    pending = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Certificates:
    ca_file: Path
    cert_file: Path
    key_file: Path
    self_signed_cert: Path
    self_signed_key: Path


def make_certificates(directory: Path) -> Certificates:
    """A test CA with a ``localhost`` certificate, and a self-signed one, via openssl."""

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=directory)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650", "-subj", "/CN=Test CA",
        "-keyout", "ca.key", "-out", "ca.pem")  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
        "-keyout", "server.key", "-out", "server.csr")  # fmt: skip
    (directory / "ext.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "30", "-extfile", "ext.cnf", "-out", "server.pem")  # fmt: skip
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
        "-keyout", "self.key", "-out", "self.pem")  # fmt: skip
    return Certificates(
        directory / "ca.pem",
        directory / "server.pem",
        directory / "server.key",
        directory / "self.pem",
        directory / "self.key",
    )


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context
