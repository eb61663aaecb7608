"""One asyncio event loop per worker process, shared by every probe batch.

The probe worker runs Celery's threads pool: each task thread hands its batch to this
loop and pushes the results to the buffer as the loop finishes them. One loop doing all
the network work beats one loop per task thread: with dozens of loops the threads fight
over the GIL and a check that should take 20 ms waits seconds for its turn (measured:
~5 ms of CPU per check with 32 loops, ~1 ms with one).

The loop is uvloop's (libuv, in C) rather than asyncio's own: the loop's share of a
check's CPU (selector, timers, transports) was about a sixth with asyncio's.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import uvloop

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


def probe_loop() -> asyncio.AbstractEventLoop:
    """The process's probe loop, started on first use (so after any fork)."""
    global _loop
    with _lock:
        if _loop is None or _loop.is_closed():
            loop = uvloop.new_event_loop()
            threading.Thread(target=loop.run_forever, name="probe-loop", daemon=True).start()
            _loop = loop
        return _loop


def probe_loop_run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` on the probe loop and wait for its result (from any thread)."""
    return asyncio.run_coroutine_threadsafe(coroutine, probe_loop()).result()
