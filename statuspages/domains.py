"""The custom domains of the status pages, as this process last read them.

Read from the database at most every ``DOMAINS_SECONDS`` (one small query), so a
request on the product's own host costs a dictionary lookup; a change of a page's
domains is read again at once in the process that made it and within
``DOMAINS_SECONDS`` in the others. While MySQL is away the domains last read are
kept (none, if it was away from the start) and read again every ``RETRY_SECONDS``:
the lookup runs before every request, so a failure here would turn every page, the
health check included, into a server error instead of its own answer.
"""

from __future__ import annotations

import logging
import threading
import time

from django.db import DatabaseError

from core.reachability import reachable_log, unreachable_log
from statuspages.models import StatusDomain

log = logging.getLogger(__name__)

DOMAINS_SECONDS = 30.0
RETRY_SECONDS = 5.0
WHILE_DOWN = "status pages on custom domains are served from the domains last read"


class _Domains:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded_at = -DOMAINS_SECONDS
        self._slugs: dict[str, str] = {}

    def slug_for(self, host: str) -> str | None:
        if time.monotonic() - self._loaded_at > DOMAINS_SECONDS:
            with self._lock:
                self._load()
        return self._slugs.get(host)

    def _load(self) -> None:
        try:
            self._slugs = dict(StatusDomain.objects.values_list("domain", "page__slug"))
        except DatabaseError as exc:
            unreachable_log(log, "database", exc, WHILE_DOWN)
            self._loaded_at = time.monotonic() - DOMAINS_SECONDS + RETRY_SECONDS
            return
        self._loaded_at = time.monotonic()
        reachable_log(log, "database", "custom domains are read again")

    def forget(self) -> None:
        """Read the domains again on the next request (after a change, and in tests)."""
        self._loaded_at = -DOMAINS_SECONDS


domains = _Domains()
