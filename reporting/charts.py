"""Charts as server-rendered SVG: no JavaScript, no CDN, readable on a phone.

Each function returns safe markup for a template. The SVGs scale to their container
(``viewBox`` plus ``width: 100%``) and carry ``<title>`` elements so that a screen
reader, or a long press on a phone, tells the figure behind a bar or a line.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from html import escape

from django.utils.safestring import SafeString, mark_safe

from alerting.selectors import ShadedPeriod
from reporting.queries import DayBar, LatencyStats

UP_COLOUR = "#2e9d5b"
WARN_COLOUR = "#e0a100"
DOWN_COLOUR = "#d64545"
EMPTY_COLOUR = "#d9dde3"
MAINTENANCE_COLOUR = "#7b61c9"
MAINTENANCE_OPACITY = 0.18
# A five-minute window is a sliver of a 30-day chart; drawn no narrower than this.
MAINTENANCE_MIN_WIDTH = 2.0


def sparkline(values: Sequence[float | None], *, width: int = 120, height: int = 28) -> SafeString:
    """A small line of hourly mean latency; gaps where there was no data."""
    known = [v for v in values if v is not None]
    if not known:
        return mark_safe(  # noqa: S308 (built from numbers only)
            f'<svg class="spark" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="no latency data"><title>no data</title></svg>'
        )
    top = max(known) or 1.0
    step = width / max(len(values) - 1, 1)
    segments: list[list[str]] = [[]]
    for index, value in enumerate(values):
        if value is None:
            segments.append([])
            continue
        y = height - 2 - (value / top) * (height - 4)
        segments[-1].append(f"{index * step:.1f},{y:.1f}")
    lines = "".join(
        f'<polyline points="{" ".join(points)}" fill="none" stroke="#3a6fd8" stroke-width="1.5"/>'
        for points in segments
        if len(points) > 1
    )
    dots = "".join(
        f'<circle cx="{points[0].split(",")[0]}" cy="{points[0].split(",")[1]}" r="1.2" '
        'fill="#3a6fd8"/>'
        for points in segments
        if len(points) == 1
    )
    label = f"24 h latency, peak {top:.0f} ms"
    return mark_safe(  # noqa: S308 (numbers and a fixed label)
        f'<svg class="spark" viewBox="0 0 {width} {height}" role="img" aria-label="{label}">'
        f"<title>{label}</title>{lines}{dots}</svg>"
    )


def latency_chart(
    points: Sequence[LatencyStats],
    *,
    since: dt.datetime,
    until: dt.datetime,
    maintenance: Sequence[ShadedPeriod] = (),
    width: int = 720,
    height: int = 240,
) -> SafeString:
    """Mean and p95 latency per bucket against time, with a y axis in ms and a few
    time labels; failed-only buckets are left as gaps; maintenance periods shaded
    behind the lines."""
    left, right, top_pad, bottom = 48, 8, 10, 24
    plot_w, plot_h = width - left - right, height - top_pad - bottom
    highs = [p.p95_ms or p.avg_ms or 0 for p in points]
    ceiling = _nice_ceiling(max(highs, default=0))
    span = (until - since).total_seconds() or 1.0

    def x(moment: dt.datetime) -> float:
        return left + (moment - since).total_seconds() / span * plot_w

    def y(value: float) -> float:
        return top_pad + plot_h - value / ceiling * plot_h

    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="Latency, mean and 95th percentile">'
        "<title>Latency: mean (blue) and p95 (orange), ms</title>"
    ]
    for period in maintenance:
        parts.append(
            _shade(period, x(period.starts_at), x(period.ends_at), top=top_pad, height=plot_h)
        )
    for fraction in (0, 0.25, 0.5, 0.75, 1):
        value = ceiling * fraction
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
            'stroke="#e6e8eb"/>'
            f'<text x="{left - 4}" y="{y(value) + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="#5b6470">{value:.0f}</text>'
        )
    for index in range(5):
        moment = since + (until - since) * index / 4
        anchor = "start" if index == 0 else "end" if index == 4 else "middle"
        label = moment.strftime("%d %b %H:%M" if span <= 2 * 86400 else "%d %b")
        parts.append(
            f'<text x="{x(moment):.1f}" y="{height - 6}" text-anchor="{anchor}" '
            f'font-size="11" fill="#5b6470">{label}</text>'
        )
    for attribute, colour, name in (("p95_ms", "#e07b00", "p95"), ("avg_ms", "#3a6fd8", "avg")):
        coordinates = [
            f"{x(p.start):.1f},{y(float(value)):.1f}"
            for p in points
            if p.start is not None and (value := getattr(p, attribute)) is not None
        ]
        if coordinates:
            parts.append(
                f'<polyline class="series-{name}" points="{" ".join(coordinates)}" fill="none" '
                f'stroke="{colour}" stroke-width="1.6" stroke-linejoin="round"/>'
            )
    if not points:
        parts.append(
            f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" fill="#5b6470">'
            "No checks in this range yet</text>"
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 (numbers and fixed labels only)


def uptime_bars(
    bars: Sequence[DayBar],
    *,
    maintenance: Sequence[ShadedPeriod] = (),
    width: int = 720,
    height: int = 34,
) -> SafeString:
    """The status-page strip: one bar per day, green, amber below 99.9 %, red below
    99 %, grey without data; maintenance periods shaded over the hours they cover."""
    gap = 1.0
    bar_w = (width - gap * (len(bars) - 1)) / max(len(bars), 1)

    def x(moment: dt.datetime) -> float:
        days = (moment - dt.datetime.combine(bars[0].day, dt.time(), tzinfo=dt.UTC)) / _DAY
        return int(days) * (bar_w + gap) + (days - int(days)) * bar_w

    parts = [
        f'<svg class="bars" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="Daily uptime, last {len(bars)} days">'
    ]
    for index, bar in enumerate(bars):
        percent = bar.uptime_percent
        if percent is None:
            colour, label = EMPTY_COLOUR, "no data"
        else:
            colour = UP_COLOUR if percent >= 99.9 else WARN_COLOUR if percent >= 99 else DOWN_COLOUR
            label = f"{percent:.2f} % ({bar.failures} of {bar.checks} checks failed)"
        parts.append(
            f'<rect x="{index * (bar_w + gap):.2f}" y="0" width="{bar_w:.2f}" height="{height}" '
            f'rx="1.5" fill="{colour}"><title>{bar.day.isoformat()}: {escape(label)}</title></rect>'
        )
    for period in maintenance if bars else ():
        parts.append(_shade(period, x(period.starts_at), x(period.ends_at), top=0, height=height))
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 (dates, numbers and escaped labels)


_DAY = dt.timedelta(days=1)


def _shade(period: ShadedPeriod, left: float, right: float, *, top: float, height: float) -> str:
    """A translucent band over ``[left, right]`` whose title names the window (escaped:
    the name is the user's) and its times on the window's own clocks."""
    width = max(right - left, MAINTENANCE_MIN_WIDTH)
    label = f"Maintenance: {period.name}, {period.when} (alerts held)"
    return (
        f'<rect class="maintenance" x="{left:.1f}" y="{top}" width="{width:.1f}" '
        f'height="{height}" fill="{MAINTENANCE_COLOUR}" fill-opacity="{MAINTENANCE_OPACITY}">'
        f"<title>{escape(label)}</title></rect>"
    )


def _nice_ceiling(value: float) -> float:
    """The next 1, 2 or 5 times a power of ten at or above ``value`` (at least 10 ms)."""
    ceiling = 10.0
    while ceiling < value:
        for factor in (2, 2.5, 2):
            ceiling *= factor
            if ceiling >= value:
                break
    return ceiling
