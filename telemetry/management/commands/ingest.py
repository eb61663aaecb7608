"""``manage.py ingest``: the long-lived ingest loop (run several for more throughput)."""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import socket
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from redis import RedisError

from core.redis import persistence_warning
from telemetry.ingest import ingest_drain, ingest_forever

SWITCH_INTERVAL_SECONDS = 0.0005


class Command(BaseCommand):
    help = "Drain the Redis result buffer into MySQL in batches, until stopped."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--consumer",
            default=f"{socket.gethostname()}-{os.getpid()}",
            help="Consumer name in the stream's group (default: host-pid). A restarted "
            "process with the same name takes its own pending batch back at once; "
            "others' are reclaimed after TELEMETRY_INGEST_RECLAIM_SECONDS.",
        )
        parser.add_argument("--batch-size", type=int, default=None)
        parser.add_argument(
            "--once", action="store_true", help="Drain until the buffer is empty, then exit."
        )

    def handle(
        self, *args: Any, consumer: str, batch_size: int | None, once: bool, **_: Any
    ) -> None:
        if batch_size is not None and not 1 <= batch_size <= 10_000:
            self.stderr.write("--batch-size must be between 1 and 10000.")
            raise SystemExit(2)
        # Django's start-up objects live as long as the process: keep the garbage
        # collector from walking them again on every batch.
        gc.freeze()
        # The loop takes the next batch on a helper thread while this one waits on
        # MySQL; when a query returns, this thread waits for the helper to let go of
        # the GIL, up to the switch interval (5 ms by default) each time, several
        # times a batch. A shorter interval keeps MySQL fed.
        sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
        with contextlib.suppress(RedisError):  # the loop says once if Redis is away
            if warning := persistence_warning():
                self.stderr.write(f"Warning: {warning}.")
        if once:
            total = ingest_drain(consumer=consumer, max_seconds=float("inf"), batch_size=batch_size)
        else:
            stopping: list[bool] = []
            # Finish the batches in hand on SIGTERM/SIGINT, then exit.
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: stopping.append(True))
            self.stdout.write(f"ingest: consumer {consumer}, Ctrl-C stops after the batches taken")
            total = ingest_forever(
                consumer=consumer, batch_size=batch_size, should_stop=lambda: bool(stopping)
            )
        self.stdout.write(
            f"ingest: stored {total.stored}, duplicates {total.duplicates}, "
            f"dead letters {total.dead_letters}, reclaimed {total.reclaimed}"
        )
