"""Celery Beat's scheduler: django-celery-beat's, without a COMMIT per tick.

``DatabaseScheduler.schedule_changed`` commits before it reads the schedule's change
counter, so that a connection left in a REPEATABLE READ transaction sees what others
changed (django-celery-beat issue 41). Our connections run in autocommit at READ
COMMITTED (Django's default for MySQL): every SELECT already sees what others
committed, and that COMMIT was all Beat did to the server, about twice a second. At
100,000 monitors a minute it was over half of the server's transactions (the
pipeline benchmark's ``pipeline.mysql_transactions_per_1000_results``).
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import close_old_connections, connection
from django.db.utils import DatabaseError, InterfaceError
from django_celery_beat.schedulers import DatabaseScheduler

from core.reachability import unreachable_log

logger = logging.getLogger(__name__)


class Scheduler(DatabaseScheduler):
    """``DatabaseScheduler`` with ``schedule_changed`` reading without committing while
    the connection is in autocommit (outside that, the library's own, which commits)."""

    def schedule_changed(self) -> bool:
        """Whether the schedule's change counter moved since the last tick; False when
        MySQL does not answer (one line; the next tick asks again)."""
        try:
            close_old_connections()
            if not connection.get_autocommit() or connection.in_atomic_block:
                return bool(super().schedule_changed())
            # The library keeps the counter last seen here (untyped).
            last: Any = getattr(self, "_last_timestamp", None)
            ts = self.Changes.last_change()
        except (DatabaseError, InterfaceError) as exc:
            unreachable_log(logger, "database", exc, "Beat keeps its schedule and asks again")
            return False
        try:
            return bool(ts and ts > (last or ts))
        finally:
            self._last_timestamp = ts
