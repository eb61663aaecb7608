from __future__ import annotations

from typing import Any

from celery import current_app
from django.core.management.base import BaseCommand, CommandError

from core.broker import QueueArgumentsChanged, broker_queues_ensure
from core.reachability import broker_state, redis_state
from core.redis import persistence_warning


class Command(BaseCommand):
    help = "Check that Redis and RabbitMQ answer; one line per service that does not."

    requires_system_checks: list[str] = []

    def handle(self, *args: Any, **options: Any) -> None:
        # The database is checked by ensure_database, which can also create it.
        down = [state for state in (redis_state(), broker_state()) if not state.ok]
        if down:
            raise CommandError("\n".join(state.describe() for state in down))
        try:
            notes = broker_queues_ensure(app=current_app)
        except QueueArgumentsChanged as exc:
            raise CommandError(str(exc)) from None
        for note in notes:
            self.stdout.write(f"RabbitMQ: {note}.")
        warning = persistence_warning()
        if warning:
            self.stderr.write(f"Warning: {warning}.")
        self.stdout.write("Redis and RabbitMQ answer.")
