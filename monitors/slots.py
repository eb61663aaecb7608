"""A slot and how it travels: the probe task's message from the dispatcher to a probe worker.

A *slot* is one check to do: a monitor at a scheduled time. Since message version 2 it
carries what to check as well (the monitor's probe columns, read by the dispatcher
under the claim's row lock), so a probe worker needs no database: RabbitMQ brings the
work, the Redis buffer takes the results.

The message of one probe batch, JSON (Celery's json serializer)::

    args   = [[[monitor_id, scheduled_epoch_ms], ...]]     # the slots, as in version 1
    kwargs = {"v": 2, "specs": [spec, ...]}                # spec i belongs to slot i

A ``spec`` is a dict of the monitor's ``PROBE_COLUMNS`` (without ``id``) that leaves
out every column holding its ``WIRE_DEFAULTS`` value, so a plain HTTP monitor travels
as ``{"url": "https://example.com/"}``: a message of 250 such slots is about 17 KB (70
bytes a slot with its id and time, against 25 in version 1), about 7 MB a minute at
100,000 monitors a minute. A dict rather than a list in field order: a column added
later is simply absent from older messages, and a message names what it carries.

Version 1 (``args`` only, no ``kwargs``) came from dispatchers before this one and is
still read: its slots have no spec (see ``monitors.batch`` for what a worker does with
them). Upgrade the probe workers before the dispatcher: a worker older than version 2
refuses the ``kwargs`` of a version 2 message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from monitors.models import DEFAULT_STATUS_CODES, Monitor
from monitors.validators import (
    DEFAULT_PAGE_KIB,
    DEFAULT_PING_COUNT,
    DEFAULT_PING_MAX_LOSS_PERCENT,
)

MESSAGE_VERSION = 2

# The monitor columns a check needs: its id and what is checked (the interval is the
# dispatcher's). Read with ``values_list``: building 100 model instances per batch cost
# more CPU than the checks' own result handling.
PROBE_COLUMNS = ("id", *(name for name in Monitor.SCHEDULE_FIELDS if name != "interval_seconds"))
SPEC_COLUMNS = PROBE_COLUMNS[1:]

# What a column left out of a version 2 spec holds. Fixed with the version, not read
# from the model: a message queued by one release is read by the next, and a model
# default that changed in between must not change what an older message meant. They
# equal the model's defaults today (a test holds that), which is what keeps specs small.
WIRE_DEFAULTS: Mapping[str, Any] = {
    "kind": "http",
    "method": "GET",
    "headers": {},
    "body": "",
    "expected_status_codes": DEFAULT_STATUS_CODES,
    "keyword": "",
    "keyword_mode": "present",
    "max_body_kib": DEFAULT_PAGE_KIB,
    "json_assertions": [],
    "connect_to": "",
    "tls_verify": True,
    "tls_ca_bundle": "",
    "dns_record_type": "A",
    "dns_resolver": "",
    "dns_expected": [],
    "dns_match": "resolves",
    "ping_count": DEFAULT_PING_COUNT,
    "ping_max_loss_percent": DEFAULT_PING_MAX_LOSS_PERCENT,
    "ping_max_rtt_ms": None,
    "timeout_seconds": 10,
}
_ABSENT = object()
# (column, what it holds when left out), in SPEC_COLUMNS order: half the CPU of a
# lookup per column, for every slot a dispatch claims.
_SPEC_DEFAULTS = tuple((name, WIRE_DEFAULTS.get(name, _ABSENT)) for name in SPEC_COLUMNS)

Spec = Mapping[str, Any]  # a spec as it travels (see the module docstring)


@dataclass(frozen=True, slots=True, order=True)
class Slot:
    """One check to do: monitor ``monitor_id`` at ``scheduled_ms`` (epoch ms), what to
    check (``spec``; None for a version 1 message, which carried none) and from where
    (``regions``, the dispatcher's; a message carries its one region).

    ``starts_ms``: when the check starts, if later than its slot (a missed slot being
    caught up, ``monitors.dispatch.catch_up_plan``). It is the dispatcher's: the message's
    batch is sent for that second, and a worker starts a check whose slot has passed
    at once. The result keeps ``scheduled_ms``, the slot it stands for."""

    scheduled_ms: int
    monitor_id: int
    spec: Spec | None = field(default=None, compare=False)
    starts_ms: int | None = field(default=None, compare=False)
    # The regions the slot goes to (``monitors.regions.monitor_regions``); empty: the
    # local region alone, as before regions.
    regions: tuple[str, ...] = field(default=(), compare=False)

    @property
    def starts_at_ms(self) -> int:
        """When the check starts (epoch ms): ``starts_ms``, else the slot itself."""
        return self.scheduled_ms if self.starts_ms is None else self.starts_ms


def spec_encode(values: Sequence[Any]) -> dict[str, Any]:
    """A spec from the values of ``SPEC_COLUMNS``, in that order."""
    return {
        name: value
        for (name, default), value in zip(_SPEC_DEFAULTS, values, strict=True)
        if value != default
    }


def spec_row(monitor_id: int, spec: Spec) -> tuple[Any, ...]:
    """The values of ``PROBE_COLUMNS`` a spec stands for (``KeyError`` without a url)."""
    return (
        monitor_id,
        *(spec[name] if name in spec else WIRE_DEFAULTS[name] for name in SPEC_COLUMNS),
    )


def message_encode(slots: Sequence[Slot]) -> tuple[list[Any], dict[str, Any]]:
    """The ``(args, kwargs)`` of the probe task for ``slots``, every one with its spec."""
    specs = []
    for slot in slots:
        if slot.spec is None:
            raise ValueError(f"slot of monitor {slot.monitor_id} has no spec to send")
        specs.append(slot.spec)
    pairs = [[slot.monitor_id, slot.scheduled_ms] for slot in slots]
    return [pairs], {"v": MESSAGE_VERSION, "specs": specs}


def message_decode(
    pairs: Sequence[Sequence[int]], *, version: int = 1, specs: Sequence[Spec] | None = None
) -> list[Slot]:
    """The slots of a probe task's message; a version 1 message's have no spec."""
    if version == 1 or specs is None:
        return [Slot(int(ms), int(pk)) for pk, ms in pairs]
    if version != MESSAGE_VERSION or len(specs) != len(pairs):
        raise ValueError(
            f"probe message version {version} with {len(specs)} specs for "
            f"{len(pairs)} slots; this worker reads versions 1 and 2"
        )
    return [Slot(int(ms), int(pk), spec) for (pk, ms), spec in zip(pairs, specs, strict=True)]
