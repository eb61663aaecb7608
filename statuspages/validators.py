"""Checks of what owners type into a status page: slugs, domains and logos."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError

LOGO_MAX_BYTES = 256 * 1024
# Raster formats only, told by their first bytes: an SVG logo could carry script.
LOGO_SIGNATURES = {
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"\xff\xd8\xff": "image/jpeg",
    b"GIF87a": "image/gif",
    b"GIF89a": "image/gif",
}
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
RESERVED_SLUGS = frozenset({"badge", "badges", "static", "admin", "api"})


def logo_type(data: bytes) -> str:
    """The content type of an uploaded logo (PNG, JPEG, GIF; WebP by its RIFF header).
    ``ValidationError`` naming the field for anything else or more than 256 KiB."""
    if len(data) > LOGO_MAX_BYTES:
        raise ValidationError(
            f"The logo is {len(data) // 1024} KiB; at most {LOGO_MAX_BYTES // 1024} KiB.",
            code="logo_too_large",
        )
    for signature, content_type in LOGO_SIGNATURES.items():
        if data.startswith(signature):
            return content_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    raise ValidationError("The logo must be a PNG, JPEG, GIF or WebP image.", code="logo_type")


def validate_domain(value: str) -> None:
    """A host name of at least two labels, lower case, no port, scheme or path."""
    labels = value.split(".")
    if len(value) > 253 or len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise ValidationError(
            f"{value!r} is not a host name such as status.example.com (no scheme, port or path).",
            code="domain",
        )


def validate_slug(value: str) -> None:
    if value in RESERVED_SLUGS:
        raise ValidationError(f"{value!r} is reserved; choose another slug.", code="reserved")
