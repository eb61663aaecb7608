"""Shields-style SVG badges: a grey label and a coloured message, drawn like the
"flat" style of shields.io (same geometry and colours), so they sit beside the
badges a README already has."""

from __future__ import annotations

from html import escape

GREEN = "#4c1"
YELLOW = "#dfb317"
ORANGE = "#fe7d37"
RED = "#e05d44"
BLUE = "#007ec6"
GREY = "#9f9f9f"
LABEL_GREY = "#555"

# Verdana 11 px advance widths of the characters badges use, rounded to tenths; others
# count as a wide letter. The text is centred, so a small error only shifts padding.
_NARROW = dict.fromkeys("ijlI.,:;!|' ", 3.5)
_MEDIUM = dict.fromkeys("frt()[]-", 4.6)
_WIDE = dict.fromkeys("mwMW%", 10.5)


def text_width(text: str) -> float:
    """Approximate rendered width in px of ``text`` at Verdana 11 px."""
    return sum(_NARROW.get(c) or _MEDIUM.get(c) or _WIDE.get(c) or 7.0 for c in text)


def badge_svg(*, label: str, message: str, colour: str) -> str:
    """A badge reading ``label | message``; ``colour`` a CSS colour of the message."""
    left = round(text_width(label) + 10)
    right = round(text_width(message) + 10)
    total = left + right
    label_text, message_text = escape(label), escape(message)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="20" role="img" '
        f'aria-label="{label_text}: {message_text}"><title>{label_text}: {message_text}</title>'
        '<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" '
        'stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient>'
        f'<clipPath id="r"><rect width="{total}" height="20" rx="3" fill="#fff"/></clipPath>'
        f'<g clip-path="url(#r)"><rect width="{left}" height="20" fill="{LABEL_GREY}"/>'
        f'<rect x="{left}" width="{right}" height="20" fill="{colour}"/>'
        f'<rect width="{total}" height="20" fill="url(#s)"/></g>'
        '<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" '
        'font-size="11">'
        f'<text x="{left / 2:.1f}" y="15" fill="#010101" fill-opacity=".3">{label_text}</text>'
        f'<text x="{left / 2:.1f}" y="14">{label_text}</text>'
        f'<text x="{left + right / 2:.1f}" y="15" fill="#010101" fill-opacity=".3">'
        f"{message_text}</text>"
        f'<text x="{left + right / 2:.1f}" y="14">{message_text}</text></g></svg>'
    )


STATUS_COLOURS = {
    "operational": GREEN,
    "up": GREEN,
    "maintenance": BLUE,
    "degraded": YELLOW,
    "partial_outage": ORANGE,
    "major_outage": RED,
    "down": RED,
    "paused": GREY,
    "unknown": GREY,
}


def uptime_colour(percent: float | None) -> str:
    """Green from 99.9 %, yellow from 99 %, orange from 95 %, red below; grey: no data."""
    if percent is None:
        return GREY
    if percent >= 99.9:
        return GREEN
    return YELLOW if percent >= 99 else ORANGE if percent >= 95 else RED


def latency_colour(ms: float | None) -> str:
    if ms is None:
        return GREY
    return GREEN if ms < 300 else YELLOW if ms < 1000 else RED
