"""Validation of monitor configuration, shared by the admin, the API and importers.

Each validator raises ``ValidationError`` with a message a person can act on; the
model's ``clean()`` maps them to fields so that a form or serializer shows them
next to the field that is wrong.
"""

from __future__ import annotations

import ipaddress
import re
import ssl
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

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

# RFC 7230 token characters: what a header name may contain.
HEADER_NAME_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
# Hop-by-hop and framing headers are the HTTP client's business, not the user's.
FORBIDDEN_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "upgrade", "te", "trailer"}
)
STATUS_RANGE_RE = re.compile(r"^\s*(\d{3})\s*(?:-\s*(\d{3})\s*)?$")

http_url_validator = URLValidator(schemes=["http", "https"])


MAX_CA_BUNDLE_BYTES = 65536


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
