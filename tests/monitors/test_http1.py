"""The lean HTTP/1.1 path for plain GET/HEAD checks, against a raw local server that
records the request bytes and answers whatever the test says."""

from __future__ import annotations

import asyncio
import datetime as dt
import gzip
import zlib

import pytest

from monitors.probes import ProbeSpec, check_batch
from monitors.probes.engine import plain_get
from monitors.probes.http1 import InvalidHead, parse_head
from telemetry.records import FailureKind


def http(url, **kwargs):
    return ProbeSpec(monitor_id=1, kind="http", url=url, timeout_seconds=2, **kwargs)


def exchange(answer: bytes, *, path="/p?q=1", policy, **spec_fields):
    """One check against a server that sends ``answer`` whatever it is asked."""
    received: list[bytes] = []

    async def handle(reader, writer):
        received.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(answer)
        await writer.drain()
        writer.close()

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            spec = http(f"http://127.0.0.1:{port}{path}", **spec_fields)
            [result] = await check_batch([(spec, dt.datetime.now(dt.UTC))], policy=policy)
        return result, port

    result, port = asyncio.run(main())
    return result, (received or [b""])[0], port


def test_it_sends_a_minimal_request_with_the_monitors_headers(loopback_policy):
    result, request, port = exchange(
        b"HTTP/1.1 204 No Content\r\nServer: raw\r\n\r\n",
        policy=loopback_policy,
        headers={"user-agent": "mine/1", "X-Probe": "yes"},
    )

    assert result.ok and result.status_code == 204, result
    lines = request.decode("latin-1").split("\r\n")
    assert lines[0] == "GET /p?q=1 HTTP/1.1"
    assert lines[1] == f"Host: 127.0.0.1:{port}"
    assert "user-agent: mine/1" in lines and "X-Probe: yes" in lines
    assert not any(line.startswith("User-Agent") for line in lines)  # theirs wins
    assert "Connection: close" in lines
    assert result.connect_ms is not None and result.ttfb_ms is not None
    assert result.dns_ms is None  # an IP literal


@pytest.mark.parametrize(
    "answer",
    [
        b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
        b"HTTP/1.1 abc Nope\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX-Filler: " + b"a" * 70_000,
    ],
    ids=["not-http", "bad-status", "head-too-large"],
)
def test_it_classifies_an_answer_that_is_not_an_http_head(answer, loopback_policy):
    result, _request, _port = exchange(answer, policy=loopback_policy)

    assert result.failure == FailureKind.INVALID, result
    assert result.error.startswith("invalid response")


def test_it_skips_informational_answers_before_the_final_one(loopback_policy):
    result, _request, _port = exchange(
        b"HTTP/1.1 103 Early Hints\r\nLink: </app.css>; rel=preload\r\n\r\n"
        b"HTTP/1.1 503 Service Unavailable\r\n\r\n",
        policy=loopback_policy,
    )

    assert result.status_code == 503 and result.failure == FailureKind.STATUS


def test_it_classifies_a_connection_closed_before_the_head(loopback_policy):
    result, _request, _port = exchange(b"HTTP/1.1 200", policy=loopback_policy)

    assert result.failure == FailureKind.CONNECTION, result


def test_a_redirect_status_that_is_expected_is_not_followed(loopback_policy):
    result, _request, _port = exchange(
        b"HTTP/1.1 301 Moved\r\nLocation: http://10.0.0.5/\r\n\r\n",
        policy=loopback_policy,
        expected_status=((301, 301),),
    )

    assert result.ok and result.status_code == 301


def test_gets_and_heads_with_nothing_to_send_take_the_lean_path():
    assert plain_get(http("http://example.com/"))
    assert plain_get(http("https://example.com/", method="HEAD", headers={"X-A": "1"}))
    assert plain_get(http("http://example.com/", keyword="up"))
    assert not plain_get(http("http://example.com/", method="POST", body="x"))
    assert not plain_get(http("http://example.com/", method="PUT"))
    assert not plain_get(http("http://example.com/", headers={"X-A": "1\r\nX-B: 2"}))
    assert not plain_get(http("http://example.com/", headers={"X-A": "caf\u00e9 \u2603"}))


def test_parse_head_reads_status_reason_and_fields():
    assert parse_head(b"HTTP/1.1 302 Found\r\nlocation:  /next \r\nX: y") == (
        302,
        "Found",
        {"location": "/next", "x": "y"},
    )
    assert parse_head(b"HTTP/1.0 200") == (200, "", {})
    # As aiohttp decodes them: UTF-8, and a byte that is not UTF-8 kept as a surrogate.
    assert parse_head(b"HTTP/1.1 302 Found\r\nLocation: /caf\xc3\xa9/\xe9")[2] == {
        "location": "/caf\u00e9/\udce9"
    }
    with pytest.raises(InvalidHead):
        parse_head(b"HTTP/2 200 OK")
    with pytest.raises(InvalidHead):
        parse_head(b"HTTP/1.1 999 Odd")


PAGE = b"<html><body>all systems operational</body></html>"


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(PAGE), PAGE),
        b"HTTP/1.0 200 OK\r\n\r\n" + PAGE,  # delimited by the close
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"10;ext=1\r\n" + PAGE[:16] + b"\r\n"
        b"%x\r\n%s\r\n0\r\nX-Trailer: yes\r\n\r\n" % (len(PAGE) - 16, PAGE[16:]),
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n\r\n" + gzip.compress(PAGE),
        b"HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\n\r\n" + zlib.compress(PAGE),
    ],
    ids=["content-length", "close", "chunked", "gzip", "deflate"],
)
def test_it_reads_the_page_in_each_framing_and_coding(answer, loopback_policy):
    result, request, _port = exchange(answer, policy=loopback_policy, keyword="operational")

    assert result.ok, result.error
    assert b"Accept-Encoding" not in request  # nothing compressed is asked for


def test_a_gzip_bomb_is_inflated_only_up_to_the_cap(loopback_policy):
    bomb = gzip.compress(b"\0" * (64 << 20))  # 64 MiB in about 64 KiB

    result, _request, _port = exchange(
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n\r\n" + bomb,
        policy=loopback_policy,
        keyword="needle",
        max_body_kib=64,
    )

    assert result.error == "keyword 'needle' not found in the first 64 KiB; the page is longer"


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\nshort", "closed before the end"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "bad chunk size"),
        (b"HTTP/1.1 200 OK\r\nContent-Encoding: br\r\n\r\nxx", "'br' is not supported"),
        (b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n\r\nnot gzip", "bad compressed"),
    ],
    ids=["cut-short", "bad-chunk", "unknown-coding", "bad-gzip"],
)
def test_a_page_it_cannot_read_is_an_invalid_response(answer, message, loopback_policy):
    result, _request, _port = exchange(answer, policy=loopback_policy, keyword="operational")

    assert result.failure == FailureKind.INVALID, result
    assert message in result.error


def test_a_head_request_reads_no_page(loopback_policy):
    result, _request, _port = exchange(
        b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n",  # the promised 9 never come
        policy=loopback_policy,
        method="HEAD",
        keyword="operational",
    )

    assert result.ok, result.error
