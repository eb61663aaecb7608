"""UptimeSentinel's scale proof: run with ``python -m benchmarks`` (``make bench``)."""

from __future__ import annotations
