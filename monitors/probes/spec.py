"""What one check needs to know about its monitor, detached from the ORM.

The probe engine works on these plain records so that it can be tested, and run
from a management command, without Celery and without the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from monitors.validators import parse_status_codes

if TYPE_CHECKING:
    from monitors.models import Monitor


@dataclass(frozen=True, slots=True)
class ProbeSpec:
    monitor_id: int
    kind: str  # "http", "tcp" or "tls" (Monitor.Kind values)
    url: str
    timeout_seconds: float = 10.0
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    expected_status: tuple[tuple[int, int], ...] = ((200, 299),)
    keyword: str = ""
    keyword_must_appear: bool = True

    def status_expected(self, code: int) -> bool:
        return any(low <= code <= high for low, high in self.expected_status)


def spec_from_monitor(monitor: Monitor) -> ProbeSpec:
    return ProbeSpec(
        monitor_id=monitor.pk,
        kind=monitor.kind,
        url=monitor.url,
        timeout_seconds=float(monitor.timeout_seconds),
        method=monitor.method,
        headers=dict(monitor.headers or {}),
        body=monitor.body,
        expected_status=tuple(parse_status_codes(monitor.expected_status_codes)),
        keyword=monitor.keyword,
        keyword_must_appear=monitor.keyword_mode == "present",
    )
