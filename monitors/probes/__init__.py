"""Probe engine: HTTP(S), TCP and TLS checks with an SSRF guard (see engine, guard)."""

from __future__ import annotations

from core.netpolicy import BlockedTarget, TargetPolicy
from monitors.probes.engine import check_batch, classify
from monitors.probes.spec import ProbeSpec, spec_from_monitor

__all__ = [
    "BlockedTarget",
    "ProbeSpec",
    "TargetPolicy",
    "check_batch",
    "classify",
    "spec_from_monitor",
]
