"""The custom domains of the status pages, as this process last read them.

Read from the database at most every ``DOMAINS_SECONDS`` (one small query), so a
request on the product's own host costs a dictionary lookup; a change of a page's
domains is read again at once in the process that made it and within
``DOMAINS_SECONDS`` in the others.
"""

from __future__ import annotations

import threading
import time

from statuspages.models import StatusDomain

DOMAINS_SECONDS = 30.0


class _Domains:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded_at = -DOMAINS_SECONDS
        self._slugs: dict[str, str] = {}

    def slug_for(self, host: str) -> str | None:
        if time.monotonic() - self._loaded_at > DOMAINS_SECONDS:
            with self._lock:
                self._slugs = dict(StatusDomain.objects.values_list("domain", "page__slug"))
                self._loaded_at = time.monotonic()
        return self._slugs.get(host)

    def forget(self) -> None:
        """Read the domains again on the next request (after a change, and in tests)."""
        self._loaded_at = -DOMAINS_SECONDS


domains = _Domains()
