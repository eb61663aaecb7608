"""A DNS server on 127.0.0.1 for the DNS monitor tests: dnslib's ``DNSServer`` with a
resolver that answers from a small zone, and with chosen error codes for some names.

Names in ``ZONE`` answer their records of the asked type, or NOERROR with an empty
answer when they have none of that type; names not in it answer NXDOMAIN; names in
``RCODES`` answer that code. Served over UDP from a background thread, so both async
engine tests and sync task tests can use it; every question is noted in ``queries``.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from dnslib import QTYPE, RCODE, RR, DNSLabel
from dnslib.server import BaseResolver, DNSLogger, DNSServer

# Mixed case and zone-file quoting on purpose: answers are compared after normalising.
ZONE = """
a.test.       60 IN A     192.0.2.1
a.test.       60 IN A     192.0.2.2
aaaa.test.    60 IN AAAA  2001:db8::1
cname.test.   60 IN CNAME Target.Example.TEST.
mx.test.      60 IN MX    10 Mail.test.
mx.test.      60 IN MX    20 backup.test.
txt.test.     60 IN TXT   "v=spf1 -all"
txt.test.     60 IN TXT   "part one, " "part two"
ns.test.      60 IN NS    ns1.test.
ns.test.      60 IN NS    NS2.test.
soa.test.     60 IN SOA   ns1.test. hostmaster.test. 2024010101 7200 3600 1209600 300
caa.test.     60 IN CAA   0 issue "letsencrypt.org"
"""
RCODES = {"broken.test.": RCODE.SERVFAIL, "closed.test.": RCODE.REFUSED}


class ZoneResolver(BaseResolver):
    """Answers from ``ZONE`` and ``RCODES``; notes each question as (name, type)."""

    def __init__(self, queries: list[tuple[str, str]]) -> None:
        self.records = RR.fromZone(ZONE)
        self.queries = queries

    def resolve(self, request: Any, handler: Any) -> Any:
        reply = request.reply()
        qname: DNSLabel = request.q.qname
        qtype = QTYPE[request.q.qtype]
        self.queries.append((str(qname).lower(), qtype))
        if str(qname).lower() in RCODES:
            reply.header.rcode = RCODES[str(qname).lower()]
            return reply
        records = [rr for rr in self.records if rr.rname == qname]
        if not records:
            reply.header.rcode = RCODE.NXDOMAIN
        for rr in records:
            if QTYPE[rr.rtype] == qtype:
                reply.add_answer(rr)
        return reply


@dataclass
class DnsServer:
    port: int
    queries: list[tuple[str, str]] = field(default_factory=list)

    @property
    def address(self) -> str:
        """The server as a monitor's ``dns_resolver`` names it."""
        return f"127.0.0.1:{self.port}"


@contextmanager
def serve_dns() -> Iterator[DnsServer]:
    """A DNS server on 127.0.0.1, a free UDP port, until the block ends."""
    queries: list[tuple[str, str]] = []
    quiet = DNSLogger(logf=lambda _text: None)
    server = DNSServer(ZoneResolver(queries), address="127.0.0.1", port=0, logger=quiet)
    server.start_thread()
    try:
        yield DnsServer(server.server.server_address[1], queries)
    finally:
        server.stop()
        server.server.server_close()


@contextmanager
def silent_resolver() -> Iterator[str]:
    """A UDP port on 127.0.0.1 that takes questions and never answers (its address)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{sock.getsockname()[1]}"
