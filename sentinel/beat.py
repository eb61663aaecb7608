"""Celery Beat's scheduler: django-celery-beat's, without a COMMIT per tick, and with
one line per outage instead of a traceback per tick.

``DatabaseScheduler.schedule_changed`` commits before it reads the schedule's change
counter, so that a connection left in a REPEATABLE READ transaction sees what others
changed (django-celery-beat issue 41). Our connections run in autocommit at READ
COMMITTED (Django's default for MySQL): every SELECT already sees what others
committed, and that COMMIT was all Beat did to the server, about twice a second. At
100,000 monitors a minute it was over half of the server's transactions (the
pipeline benchmark's ``pipeline.mysql_transactions_per_1000_results``).

While MySQL is away Beat goes on with the schedule it has: the library logged a
traceback at each write of the entries' last run, and its full re-read every five
minutes raised out of the tick and stopped Beat. While RabbitMQ is away each due task
logged a traceback at every tick. Here each says once that the service is away, and
once that it is back (``core.reachability``); the tasks missed meanwhile are not sent
late (the next run of each comes as planned; the dispatch catches up the slots missed).
"""

from __future__ import annotations

import logging
from typing import Any

from celery.beat import SchedulingError
from django.core.exceptions import ObjectDoesNotExist
from django.db import close_old_connections, connection
from django.db.utils import DatabaseError, InterfaceError
from django_celery_beat.schedulers import DatabaseScheduler

from core.reachability import reachable_log, unreachable_log, unreachable_service

logger = logging.getLogger(__name__)

WHILE_DOWN = {
    "database": "Beat keeps its schedule and asks again",
    "broker": "Beat skips what falls due meanwhile and sends each task's next run",
}
WHILE_UP = "Beat goes on"


class Scheduler(DatabaseScheduler):
    """``DatabaseScheduler`` with ``schedule_changed`` reading without committing while
    the connection is in autocommit (outside that, the library's own, which commits),
    and each service away said once."""

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
            unreachable_log(logger, "database", exc, WHILE_DOWN["database"])
            return False
        reachable_log(logger, "database", WHILE_UP)
        try:
            return bool(ts and ts > (last or ts))
        finally:
            self._last_timestamp = ts

    @property
    def schedule(self) -> dict[str, Any]:
        """The library's schedule, re-read from MySQL when it changed and every five
        minutes; the one Beat has while MySQL does not answer."""
        try:
            return dict(super().schedule)
        except (DatabaseError, InterfaceError) as exc:
            unreachable_log(logger, "database", exc, WHILE_DOWN["database"])
            if not self._schedule:
                self._initial_read = True  # never read: read it at the next tick
            return dict(self._schedule or {})

    def sync(self) -> None:
        """Write the last run of the entries that ran (the library's, with the entry
        whose write failed kept for the next sync, and the outage said once)."""
        name = None
        try:
            close_old_connections()
            while self._dirty:
                name = self._dirty.pop()
                try:
                    self._schedule[name].save()
                except (KeyError, TypeError, ObjectDoesNotExist):
                    continue  # an entry deleted meanwhile: nothing to write
                name = None
        except (DatabaseError, InterfaceError) as exc:
            if name is not None:
                self._dirty.add(name)
            unreachable_log(logger, "database", exc, WHILE_DOWN["database"])

    def apply_entry(self, entry: Any, producer: Any = None) -> None:
        """Send a due task; RabbitMQ away is said once, other failures as the library
        says them."""
        logger.info("Scheduler: Sending due task %s (%s)", entry.name, entry.task)
        try:
            self.apply_async(entry, producer=producer, advance=False)
        except SchedulingError as exc:
            cause = exc.__context__ or exc
            if unreachable_service(cause) != "broker":
                logger.exception("sending %s failed", entry.name)
                return
            unreachable_log(logger, "broker", cause, WHILE_DOWN["broker"])
            return
        reachable_log(logger, "broker", WHILE_UP)
