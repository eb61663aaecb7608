"""Probe regions: names, their queues, and the source address of a region's checks.

A *region* is a named place where probe workers run (``local`` by default). The
dispatcher hands each slot of a monitor to every region the monitor chooses, on the
region's own queue; a remote region's workers send their results back over RabbitMQ
(``monitors.regions``). Plain Python: settings read these before Django is set up.
"""

from __future__ import annotations

import re

from kombu import Exchange, Queue

LOCAL = "local"
# Lower-case letters, digits and dashes, at most 32 (check_result.region is VARCHAR(32)):
# the name is part of a queue name, a RabbitMQ user name and a permission pattern.
REGION_PATTERN = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?")
RESULTS_QUEUE = "results"


def region_name_problem(name: str) -> str | None:
    """Why ``name`` is not a region name (None when it is one)."""
    if REGION_PATTERN.fullmatch(name):
        return None
    return (
        f"{name!r} is not a region name: 1 to 32 lower-case letters, digits and dashes, "
        "starting and ending with a letter or digit"
    )


def probe_queue(region: str) -> str:
    """The queue of ``region``'s probe workers: ``probes.<region>``, and ``probes`` for
    the local region (the queue of every release before regions, so an upgrade keeps
    its queued work and its workers' command lines)."""
    return "probes" if region == LOCAL else f"probes.{region}"


def broker_queue(name: str, *, dead_letter_exchange: str, no_declare: bool = False) -> Queue:
    """A work queue as every queue of ours is declared: durable, on a direct exchange of
    its own name, dead-lettering to ``dead_letter_exchange``. ``no_declare``: this
    process never declares it (a remote region's worker, whose user may not)."""
    return Queue(
        name,
        Exchange(name, type="direct", durable=True, no_declare=no_declare),
        routing_key=name,
        durable=True,
        queue_arguments={"x-dead-letter-exchange": dead_letter_exchange},
        no_declare=no_declare,
    )


def region_permissions(region: str) -> tuple[str, str, str]:
    """RabbitMQ's (configure, write, read) patterns for ``region``'s user: declare
    nothing, publish results only, consume its own queue only."""
    return "^$", f"^{re.escape(RESULTS_QUEUE)}$", f"^{re.escape(probe_queue(region))}$"
