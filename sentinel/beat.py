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
logged a traceback at every tick, and the run was lost: a broker away at the minute's
boundary cost that minute's dispatch. Here each says once that the service is away, and
once that it is back (``core.reachability``), and a task whose send failed is offered
again every second until its own expiry (the dispatch's is 50 s), so a broker back
within that still gets the run; one without an expiry waits for its next run.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from celery.beat import SchedulingError
from django.core.exceptions import ObjectDoesNotExist
from django.db import close_old_connections, connection
from django.db.utils import DatabaseError, InterfaceError
from django_celery_beat.schedulers import DatabaseScheduler

from core.reachability import BROKER_ERRORS, reachable_log, unreachable_log

logger = logging.getLogger(__name__)

WHILE_DOWN = {
    "database": "Beat keeps its schedule and asks again",
    "broker": "Beat offers what falls due meanwhile again every second until it expires",
}
# A task whose send met RabbitMQ away is offered again this often, until its expiry.
REOFFER_EVERY_SECONDS = 1.0
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

    def tick(self, *args: Any, **kwargs: Any) -> float:
        """The library's tick, then the re-offers that are due (``_reoffer``); while any
        is pending, Beat wakes at least every ``REOFFER_EVERY_SECONDS``."""
        delay = float(super().tick(*args, **kwargs))
        if not self._reoffers:
            return delay
        self._reoffer()
        return min(delay, REOFFER_EVERY_SECONDS) if self._reoffers else delay

    def apply_entry(self, entry: Any, producer: Any = None) -> None:
        """Send a due task; RabbitMQ away is said once, and the task is offered again
        every second until its expiry (``_reoffer``); other failures as the library
        says them."""
        logger.info("Scheduler: Sending due task %s (%s)", entry.name, entry.task)
        try:
            self.apply_async(entry, producer=producer, advance=False)
        except SchedulingError as exc:
            cause = exc.__context__ or exc
            if not isinstance(cause, BROKER_ERRORS):
                logger.exception("sending %s failed", entry.name)
                return
            unreachable_log(logger, "broker", cause, WHILE_DOWN["broker"])
            self._reoffer_later(entry)
            return
        self._reoffers.pop(entry.name, None)  # this run stands for the one kept
        reachable_log(logger, "broker", WHILE_UP)

    @property
    def _reoffers(self) -> dict[str, Reoffer]:
        # Made on first use: the library's __init__ reads the schedule (and may send)
        # before a subclass's own __init__ could set it.
        pending: dict[str, Reoffer] | None = self.__dict__.get("_pending_reoffers")
        if pending is None:
            pending = self.__dict__["_pending_reoffers"] = {}
        return pending

    def _reoffer_later(self, entry: Any) -> None:
        """Keep a task whose send met RabbitMQ away, to offer it again until it expires
        (its ``expires`` option: seconds from when it fell due, or a time); a task without
        an expiry is not offered again: its next run comes as planned."""
        expires = entry.options.get("expires")
        now = self.app.now()
        if isinstance(expires, int | float):
            until = now + dt.timedelta(seconds=expires)
        elif isinstance(expires, dt.datetime):
            until = expires
        else:
            return
        known = self._reoffers.get(entry.name)
        # A run that falls due while the last one is still offered keeps the first expiry.
        self._reoffers[entry.name] = Reoffer(entry, known.until if known else until)

    def _reoffer(self) -> None:
        """Offer each kept task again, with its own expiry; drop the ones expired."""
        now = self.app.now()
        for name, reoffer in list(self._reoffers.items()):
            if reoffer.until <= now:
                del self._reoffers[name]
                logger.info("%s expired before RabbitMQ was back; its next run comes", name)
                continue
            entry = reoffer.entry
            options = {**entry.options, "expires": reoffer.until}
            try:
                # Through the app's producer pool, which connects afresh: Beat's own
                # producer would first wait out its connection's whole retry policy.
                self.app.send_task(entry.task, args=entry.args, kwargs=entry.kwargs, **options)
            except BROKER_ERRORS as exc:
                unreachable_log(logger, "broker", exc, WHILE_DOWN["broker"])
                return  # still away: the others wait for the next second too
            del self._reoffers[name]
            logger.info("Scheduler: Sent %s again now that RabbitMQ is back", name)
            reachable_log(logger, "broker", WHILE_UP)


@dataclass(frozen=True)
class Reoffer:
    """A task whose send met RabbitMQ away, and until when it is worth sending."""

    entry: Any  # django-celery-beat's ModelEntry (untyped)
    until: dt.datetime
