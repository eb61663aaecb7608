"""Validation of monitor configuration, shared by the admin, the API and importers.

Each validator raises ``ValidationError`` with a message a person can act on; the
model's ``clean()`` maps them to fields so that a form or serializer shows them
next to the field that is wrong.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
import ssl
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdtypes.ANY.CAA
import dns.rdtypes.ANY.CNAME
import dns.rdtypes.ANY.MX
import dns.rdtypes.ANY.NS
import dns.rdtypes.ANY.SOA
import dns.rdtypes.ANY.TXT
import dns.rdtypes.IN.A
import dns.rdtypes.IN.AAAA
import jmespath
import jmespath.exceptions
import jmespath.functions
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

from monitors.heartbeat_schedule import time_zone

MAX_HEADERS = 20
MAX_HEADER_NAME_LENGTH = 256
MAX_HEADER_VALUE_LENGTH = 4096
MAX_HEADERS_TOTAL_BYTES = 8192
MAX_BODY_BYTES = 65536
MIN_INTERVAL_SECONDS = 30
MAX_INTERVAL_SECONDS = 86400
MIN_TIMEOUT_SECONDS = 1
MAX_TIMEOUT_SECONDS = 60
# How much of a page a keyword check may read (KiB): a status page is a few KiB and a
# shop's home page a few hundred; 10 MiB a minute per monitor is a download, not a check.
MIN_PAGE_KIB = 1
MAX_PAGE_KIB = 10240
DEFAULT_PAGE_KIB = 1024
# The p95 latency rule keeps a window's durations in Redis (alerting.latency): bounded.
MAX_LATENCY_WINDOW_MINUTES = 60
# Fewer checks than this in a window say nothing about a 95th percentile.
MIN_LATENCY_WINDOW_CHECKS = 3
# The longest 'failures out of recent checks' window (monitors.state keeps it as bits).
MAX_CONFIRM_WINDOW = 20
# Regions a monitor may confirm a failure across (monitors.regions).
MAX_REGIONS = 32
# Ping monitors: echo requests per check, sent this far apart (ping(8)'s shortest
# interval for users who are not root), each waited for at least MIN_PING_WAIT_SECONDS.
MIN_PING_COUNT = 1
MAX_PING_COUNT = 10
DEFAULT_PING_COUNT = 3
PING_INTERVAL_SECONDS = 0.2
MIN_PING_WAIT_SECONDS = 0.5
# A check fails with 'loss' when more than this share of its echo requests is lost:
# one lost datagram of three is noise on a busy link, two of three is not.
DEFAULT_PING_MAX_LOSS_PERCENT = 50
MAX_PING_MAX_LOSS_PERCENT = 99
MAX_PING_RTT_MS = 60000
# Heartbeat monitors: periods and grace times from a minute (the heartbeat pass runs
# once a minute) to a year; the defaults are a daily job with an hour's grace.
MIN_HEARTBEAT_SECONDS = 60
MAX_HEARTBEAT_SECONDS = 365 * 86400
DEFAULT_HEARTBEAT_PERIOD_SECONDS = 86400
DEFAULT_HEARTBEAT_GRACE_SECONDS = 3600

# RFC 7230 token characters: what a header name may contain.
HEADER_NAME_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
# Hop-by-hop and framing headers are the HTTP client's business, not the user's.
FORBIDDEN_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "upgrade", "te", "trailer"}
)
STATUS_RANGE_RE = re.compile(r"^\s*(\d{3})\s*(?:-\s*(\d{3})\s*)?$")

http_url_validator = URLValidator(schemes=["http", "https"])


MAX_CA_BUNDLE_BYTES = 65536


def validate_time_zone(value: str) -> None:
    """An IANA time zone name, e.g. Europe/Berlin (a heartbeat's cron schedule)."""
    try:
        time_zone(value)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


def validate_connect_to(value: str) -> None:
    """An IP address (v4 or v6, no brackets or port) a check connects to."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ValidationError(
            f"{value!r} is not an IP address; give the address to connect to, e.g. 203.0.113.7."
        ) from None


def validate_ca_bundle(value: str) -> None:
    """PEM text of one or more CA certificates, at most 64 KiB."""
    if len(value.encode()) > MAX_CA_BUNDLE_BYTES:
        raise ValidationError(f"A CA bundle is limited to {MAX_CA_BUNDLE_BYTES} bytes.")
    if "-----BEGIN CERTIFICATE-----" not in value:
        raise ValidationError("Paste PEM certificates (-----BEGIN CERTIFICATE----- ...).")
    try:
        ssl.create_default_context(cadata=value)
    except (ssl.SSLError, ValueError) as exc:
        raise ValidationError(f"Not a readable PEM certificate bundle: {exc}.") from None


def parse_status_codes(spec: str) -> list[tuple[int, int]]:
    """Parse ``"200-299,301"`` into inclusive ranges; raise ValidationError if malformed."""
    if not spec or not spec.strip():
        raise ValidationError("List at least one status code, e.g. 200-299.")
    ranges: list[tuple[int, int]] = []
    for part in spec.split(","):
        match = STATUS_RANGE_RE.match(part)
        if not match:
            raise ValidationError(
                f"{part.strip()!r} is not a status code or range; use e.g. 200-299,301."
            )
        low = int(match.group(1))
        high = int(match.group(2) or low)
        if not (100 <= low <= high <= 599):
            raise ValidationError(
                f"{part.strip()!r} must be codes between 100 and 599, low to high."
            )
        ranges.append((low, high))
    return ranges


def status_code_expected(code: int, spec: str) -> bool:
    return any(low <= code <= high for low, high in parse_status_codes(spec))


def validate_status_codes(spec: str) -> None:
    parse_status_codes(spec)


def validate_http_url(url: str) -> None:
    """Only http and https URLs with a host; nothing with credentials in it."""
    http_url_validator(url)
    parts = urlsplit(url)
    if parts.username or parts.password:
        raise ValidationError("Put credentials in a header (e.g. Authorization), not in the URL.")


def validate_host_port(target: str, scheme: str) -> None:
    """``tcp://host:port`` or ``tls://host:port`` for the non-HTTP kinds."""
    parts = urlsplit(target)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != scheme or not parts.hostname or not port or parts.path not in ("", "/"):
        raise ValidationError(
            f"Use the form {scheme}://host:port, e.g. {scheme}://example.com:443."
        )


def validate_regions(regions: Any) -> None:
    """A list of distinct region names, each one of ``SENTINEL_REGIONS``; empty means
    every region."""
    if not isinstance(regions, list) or not all(isinstance(r, str) for r in regions):
        raise ValidationError("Regions must be a list of region names (empty: all regions).")
    if len(set(regions)) != len(regions):
        raise ValidationError("Each region may be named once.")
    unknown = [r for r in regions if r not in settings.SENTINEL_REGIONS]
    if unknown:
        raise ValidationError(
            f"Unknown region {unknown[0][:40]!r}; the regions are "
            f"{', '.join(settings.SENTINEL_REGIONS)} (SENTINEL_REGIONS)."
        )


def validate_headers(headers: Any) -> None:
    """A flat object of string names to string values, bounded in count and size."""
    if not isinstance(headers, dict):
        raise ValidationError("Headers must be an object of name to value.")
    if len(headers) > MAX_HEADERS:
        raise ValidationError(f"At most {MAX_HEADERS} headers (got {len(headers)}).")
    total = 0
    for name, value in headers.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise ValidationError("Header names and values must be strings.")
        if not HEADER_NAME_RE.match(name) or len(name) > MAX_HEADER_NAME_LENGTH:
            raise ValidationError(f"{name[:40]!r} is not a valid header name.")
        if name.lower() in FORBIDDEN_HEADERS:
            hint = (
                " To check a virtual host on a given address, put the host name in the URL "
                "and the address in 'connect to'."
                if name.lower() == "host"
                else ""
            )
            raise ValidationError(
                f"The {name} header is set by the checker and cannot be given.{hint}"
            )
        if len(value) > MAX_HEADER_VALUE_LENGTH or "\r" in value or "\n" in value:
            raise ValidationError(
                f"The value of {name} must be one line of at most {MAX_HEADER_VALUE_LENGTH} "
                "characters."
            )
        total += len(name.encode()) + len(value.encode())
    if total > MAX_HEADERS_TOTAL_BYTES:
        raise ValidationError(
            f"Headers add up to {total} bytes; at most {MAX_HEADERS_TOTAL_BYTES}."
        )


def validate_body(body: str) -> None:
    if len(body.encode()) > MAX_BODY_BYTES:
        raise ValidationError(f"The request body is limited to {MAX_BODY_BYTES} bytes.")


# --- DNS monitors -----------------------------------------------------------------

# The record types a DNS monitor may look up (Monitor.DnsRecordType).
DNS_RECORD_TYPES = ("A", "AAAA", "CNAME", "MX", "TXT", "NS", "SOA", "CAA")
MAX_DNS_EXPECTED = 20
# A TXT record may hold several 255-byte strings; DKIM keys run to about 1 KiB.
MAX_DNS_VALUE_LENGTH = 2048
DNS_PORT = 53
# A name's labels once IDNA-encoded: host names, plus underscores (_dmarc, _acme-challenge).
DNS_NAME_RE = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")


def dns_name(target: str) -> dns.name.Name:
    """The absolute name a ``dns://name`` target looks up; ``ValueError`` with a message a
    person can act on if the target is not of that form or the name is not a DNS name
    (a label over 63 bytes, a name over 255, an empty label). Internationalised names
    are encoded as IDNA."""
    parts = urlsplit(target.strip())
    try:
        port = parts.port
    except ValueError:
        port = -1
    host = parts.netloc
    if (
        parts.scheme.lower() != "dns"
        or not host
        or port is not None
        or "@" in host
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        raise ValueError(
            "Use the form dns://name, e.g. dns://example.com; the record type, resolver "
            "and expected values are fields of their own."
        )
    try:
        name = dns.name.from_text(host, origin=dns.name.root)
    except (dns.exception.DNSException, UnicodeError) as exc:
        raise ValueError(f"{host!r} is not a DNS name: {exc}") from None
    if not DNS_NAME_RE.match(name.to_text(omit_final_dot=True)):
        raise ValueError(
            f"{host!r} is not a DNS name: use letters, digits, hyphens and underscores "
            "between the dots."
        )
    return name


def validate_dns_target(target: str) -> None:
    try:
        dns_name(target)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


def ping_host(target: str) -> str:
    """The host a ``ping://host`` target sends echo requests to: an IP address (IPv6 in
    brackets, ``ping://[2001:db8::1]``) or a DNS name, in ASCII (IDNA); ``ValueError``
    with a message a person can act on if the target is not of that form."""
    try:
        parts = urlsplit(target.strip())
        port = parts.port
    except ValueError:  # a bracketed host that is not IPv6, a port that is no number
        parts, port = urlsplit(""), -1
    host = parts.hostname or ""
    if (
        parts.scheme.lower() != "ping"
        or not host
        or port is not None
        or "@" in parts.netloc
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        raise ValueError(
            "Use the form ping://host, e.g. ping://example.com or ping://[2001:db8::1]; "
            "ICMP has no port or path."
        )
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        name = dns.name.from_text(host, origin=dns.name.root)
    except (dns.exception.DNSException, UnicodeError) as exc:
        raise ValueError(f"{host!r} is not a host name: {exc}") from None
    ascii_name = name.to_text(omit_final_dot=True)
    if not DNS_NAME_RE.match(ascii_name):
        raise ValueError(
            f"{host!r} is not a host name: use letters, digits and hyphens between the dots."
        )
    return ascii_name


def validate_ping_target(target: str) -> None:
    try:
        ping_host(target)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


def ping_min_timeout(count: int) -> int:
    """The shortest timeout (whole seconds) that lets ``count`` echo requests go out
    PING_INTERVAL_SECONDS apart and each be waited for MIN_PING_WAIT_SECONDS."""
    return math.ceil(count * MIN_PING_WAIT_SECONDS + (count - 1) * PING_INTERVAL_SECONDS)


def parse_dns_resolver(value: str) -> tuple[str, int]:
    """``(address, port)`` of a resolver given as ``ip``, ``ip:port``, ``[ipv6]:port`` or
    a bare IPv6 address (port 53 unless given); ``ValueError`` if it is none of these.
    A name is refused: a resolver found by asking another resolver is not the one the
    monitor names."""
    text = value.strip()
    address, port_text = text, ""
    if text.startswith("["):
        address, _, rest = text[1:].partition("]")
        if rest and not rest.startswith(":"):
            raise ValueError(text)
        port_text = rest[1:]
    elif text.count(":") == 1:
        address, _, port_text = text.partition(":")
    try:
        ip = ipaddress.ip_address(address)
        port = int(port_text) if port_text else DNS_PORT
    except ValueError:
        raise ValueError(text) from None
    if not 1 <= port <= 65535 or (text.startswith("[") and ip.version == 4):
        raise ValueError(text)
    return str(ip), port


def validate_dns_resolver(value: str) -> None:
    try:
        parse_dns_resolver(value)
    except ValueError:
        raise ValidationError(
            f"{value!r} is not a resolver address; give an IP address with an optional "
            "port, e.g. 9.9.9.9, 9.9.9.9:5353 or [2620:fe::fe]:53."
        ) from None


def validate_dns_expected(values: Any) -> None:
    """The shape of a DNS monitor's expected values: a list of at most 20 non-empty
    strings. Whether each is a value of the monitor's record type is
    ``dns_value_canonical``'s question, asked by ``Monitor.clean``."""
    if not isinstance(values, list) or not all(isinstance(item, str) for item in values):
        raise ValidationError('Expected values are a list of strings, e.g. ["192.0.2.1"].')
    if len(values) > MAX_DNS_EXPECTED:
        raise ValidationError(f"At most {MAX_DNS_EXPECTED} expected values (got {len(values)}).")
    for item in values:
        if not item.strip() or len(item) > MAX_DNS_VALUE_LENGTH:
            raise ValidationError(
                f"Each expected value is 1 to {MAX_DNS_VALUE_LENGTH} characters; "
                f"{item[:40]!r} is not."
            )


def dns_value_canonical(record_type: str, text: str) -> str:
    """A record value as typed (or as a zone file writes it) in the form answers are
    compared in (``dns_rdata_canonical``); ``ValueError`` saying why if it is not a value
    of ``record_type``.

    Forms: ``A`` and ``AAAA`` an address; ``CNAME`` and ``NS`` a name; ``MX``
    ``"preference host"``; ``TXT`` the text itself, or zone-file quoted strings, whose
    parts are joined (``"v=spf1 " "-all"`` is ``v=spf1 -all``); ``SOA`` its seven
    fields, or only the first few of them (``"ns1.example.com hostmaster.example.com"``),
    which then match any answer that starts with them; ``CAA``
    ``flags tag "value"``. Names compare without case or the final dot.
    """
    value = text.strip()
    if record_type == "TXT" and not value.startswith('"'):
        return value
    if record_type == "SOA" and len(value.split()) < 7:
        return _soa_start(value)
    try:
        rdata = dns.rdata.from_text(
            dns.rdataclass.IN, record_type, value, origin=dns.name.root, relativize=False
        )
    except (dns.exception.DNSException, ValueError, UnicodeError) as exc:
        raise ValueError(f"{value!r} is not {_record_form(record_type)} ({exc})") from None
    return dns_rdata_canonical(rdata)


def dns_rdata_canonical(rdata: dns.rdata.Rdata) -> str:
    """One record of an answer as text that compares equal to the same value written
    any other way: addresses in their short form, names in lower case without the final
    dot, TXT strings joined without quotes, CAA tags in lower case."""
    if isinstance(rdata, dns.rdtypes.IN.A.A | dns.rdtypes.IN.AAAA.AAAA):
        return str(ipaddress.ip_address(rdata.address))
    if isinstance(rdata, dns.rdtypes.ANY.CNAME.CNAME | dns.rdtypes.ANY.NS.NS):
        return _name_text(rdata.target)
    if isinstance(rdata, dns.rdtypes.ANY.MX.MX):
        return f"{rdata.preference} {_name_text(rdata.exchange)}"
    if isinstance(rdata, dns.rdtypes.ANY.TXT.TXT):
        return b"".join(rdata.strings).decode("utf-8", "replace")
    if isinstance(rdata, dns.rdtypes.ANY.SOA.SOA):
        names = f"{_name_text(rdata.mname)} {_name_text(rdata.rname)}"
        numbers = (rdata.serial, rdata.refresh, rdata.retry, rdata.expire, rdata.minimum)
        return " ".join([names, *map(str, numbers)])
    if isinstance(rdata, dns.rdtypes.ANY.CAA.CAA):
        value = rdata.value.decode("utf-8", "replace")
        return f'{rdata.flags} {rdata.tag.decode("ascii", "replace").lower()} "{value}"'
    return str(rdata.to_text())


def _name_text(name: dns.name.Name) -> str:
    return str(name.derelativize(dns.name.root).to_text(omit_final_dot=True)).lower()


def _soa_start(value: str) -> str:
    """The first fields of an SOA value: the primary server and the mailbox as names,
    then serial, refresh, retry, expire as 32-bit numbers."""
    fields = value.split()
    try:
        names = [_name_text(dns.name.from_text(f, origin=dns.name.root)) for f in fields[:2]]
        numbers = [int(f) for f in fields[2:]]
    except (dns.exception.DNSException, ValueError, UnicodeError):
        numbers = [-1]
    if not fields or any(not 0 <= n < 2**32 for n in numbers):
        raise ValueError(f"{value!r} is not {_record_form('SOA')}")
    return " ".join([*names, *map(str, numbers)])


def _record_form(record_type: str) -> str:
    return {
        "A": "an IPv4 address",
        "AAAA": "an IPv6 address",
        "CNAME": "a host name",
        "NS": "a host name",
        "MX": "'preference host', e.g. '10 mail.example.com'",
        "TXT": "text, or quoted strings",
        "SOA": "'server mailbox serial refresh retry expire minimum', or its first fields",
        "CAA": "'flags tag value', e.g. '0 issue \"letsencrypt.org\"'",
    }.get(record_type, f"a {record_type} value")


def dns_expected_problems(record_type: str, values: Sequence[str]) -> list[str]:
    """A message for each expected value that is not a ``record_type`` value."""
    problems: list[str] = []
    for value in values:
        if not isinstance(value, str):
            continue  # validate_dns_expected reports the list's shape
        try:
            dns_value_canonical(record_type, value)
        except ValueError as exc:
            problems.append(f"{exc}.")
    return problems


# --- JSON assertions ----------------------------------------------------------------

JSON_ASSERTION_OPS = ("==", "!=", "<", ">", "contains", "exists")
MAX_JSON_ASSERTIONS = 20
MAX_JSON_PATH_LENGTH = 500
MAX_JSON_VALUE_BYTES = 1024
JSON_ASSERTION_KEYS = frozenset({"path", "op", "value"})


def validate_json_assertions(assertions: Any) -> None:
    """A list of at most 20 ``{"path", "op", "value"}`` objects: ``path`` a JMESPath
    expression, ``op`` one of ``JSON_ASSERTION_OPS``, ``value`` any JSON value (a number
    for ``<`` and ``>``; none for ``exists``, which every other op needs). Every
    problem is reported, each naming its assertion by number."""
    if not isinstance(assertions, list):
        raise ValidationError(
            'JSON assertions are a list of {"path": ..., "op": ..., "value": ...} objects.'
        )
    if len(assertions) > MAX_JSON_ASSERTIONS:
        raise ValidationError(
            f"At most {MAX_JSON_ASSERTIONS} JSON assertions (got {len(assertions)})."
        )
    problems = [
        f"Assertion {number}: {problem}"
        for number, assertion in enumerate(assertions, start=1)
        for problem in _json_assertion_problems(assertion)
    ]
    if problems:
        raise ValidationError(problems)


def _json_assertion_problems(assertion: Any) -> list[str]:
    if not isinstance(assertion, dict):
        return ['give an object {"path": ..., "op": ..., "value": ...}.']
    problems: list[str] = []
    unknown = sorted(set(assertion) - JSON_ASSERTION_KEYS)
    if unknown:
        problems.append(f"unknown key(s) {', '.join(map(repr, unknown))}; use path, op, value.")
    path, op = assertion.get("path"), assertion.get("op")
    if not isinstance(path, str) or not path.strip():
        problems.append("give a path, e.g. status.indicator.")
    elif len(path) > MAX_JSON_PATH_LENGTH:
        problems.append(f"the path is limited to {MAX_JSON_PATH_LENGTH} characters.")
    else:
        problem = jmespath_problem(path)
        if problem:
            problems.append(f"{path!r} is not a JMESPath expression: {problem}.")
    if op not in JSON_ASSERTION_OPS:
        problems.append(f"unknown op {op!r}; use one of {', '.join(JSON_ASSERTION_OPS)}.")
    elif op == "exists" and "value" in assertion:
        problems.append("'exists' compares nothing; leave out the value.")
    elif op != "exists" and "value" not in assertion:
        problems.append(f"{op!r} needs a value to compare with.")
    elif op in ("<", ">") and not is_json_number(assertion["value"]):
        problems.append(f"{op!r} compares numbers; give a number as the value.")
    elif len(json.dumps(assertion.get("value")).encode()) > MAX_JSON_VALUE_BYTES:
        problems.append(f"the value is limited to {MAX_JSON_VALUE_BYTES} bytes of JSON.")
    return problems


def is_json_number(value: Any) -> bool:
    """A JSON number: an int or float, not a bool (which Python counts as an int)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


JMESPATH_FUNCTIONS = frozenset(jmespath.functions.Functions().FUNCTION_TABLE)


def jmespath_problem(path: str) -> str | None:
    """Why ``path`` is not a JMESPath expression a check can evaluate, or None.

    Besides the syntax, function names are looked up: JMESPath finds an unknown
    function only when it evaluates the call, which would make every check fail."""
    try:
        parsed = jmespath.compile(path).parsed
    except jmespath.exceptions.IncompleteExpressionError:
        return "it ends too early"
    except jmespath.exceptions.LexerError as exc:
        return f"{exc.message} at column {exc.lexer_position}"
    except jmespath.exceptions.ParseError as exc:
        if not hasattr(exc, "lex_position"):  # ArityError: a function's argument count
            return str(exc)
        token = f"{exc.token_value!r}" if exc.token_value else "end"
        return f"unexpected {token} at column {exc.lex_position}"
    except jmespath.exceptions.JMESPathError as exc:  # EmptyExpressionError and the like
        return str(exc).removeprefix("Invalid JMESPath expression: ").rstrip(".")
    unknown = sorted(set(_function_names(parsed)) - JMESPATH_FUNCTIONS)
    return f"unknown function {unknown[0]}()" if unknown else None


def _function_names(node: Mapping[str, Any]) -> list[str]:
    names = [node["value"]] if node.get("type") == "function_expression" else []
    for child in node.get("children", []):
        if isinstance(child, dict):
            names += _function_names(child)
    return names
