"""The spool: results kept on local disk while Redis is away, replayed by the next
push that reaches it (one fsynced file per batch).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

from django.conf import settings

SPOOL_SUFFIX = ".jsonl"
# A spool file claimed by a process that died mid-replay is taken over after this.
SPOOL_CLAIM_STALE_SECONDS = 300


def spool_dir() -> Path:
    """This host's spool directory (``TELEMETRY_SPOOL_DIR``)."""
    return Path(settings.TELEMETRY_SPOOL_DIR)


def spool_write(*, payloads: Sequence[bytes]) -> Path:
    """Write one batch durably (temp file, fsync, rename) and return its path."""
    directory = spool_dir()
    directory.mkdir(parents=True, exist_ok=True)
    name = f"{time.time_ns()}-{os.getpid()}-{uuid.uuid4().hex[:8]}{SPOOL_SUFFIX}"
    temporary = directory / f".{name}.tmp"
    with temporary.open("wb") as handle:
        # Compact JSON never contains a raw newline, so one line is one entry.
        handle.write(b"\n".join(payloads) + b"\n")
        handle.flush()
        os.fsync(handle.fileno())
    final = directory / name
    temporary.rename(final)
    return final


def spool_claims() -> Iterator[Path]:
    """Spool files this process has claimed by renaming them (only one process wins
    a rename), including claims left behind by a process that died."""
    directory = spool_dir()
    if not directory.is_dir():
        return
    stale_before = time.time() - SPOOL_CLAIM_STALE_SECONDS
    for path in sorted(directory.iterdir()):
        if path.name.endswith(SPOOL_SUFFIX):
            base = path.name
        elif ".claimed-" in path.name and _mtime(path) < stale_before:
            base = path.name.split(".claimed-")[0]
        else:
            continue
        claimed = directory / f"{base}.claimed-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        try:
            path.rename(claimed)
        except FileNotFoundError:
            continue  # another process claimed it first
        os.utime(claimed)
        yield claimed


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return time.time()


def spool_size() -> int:
    """How many batch files wait in this host's spool."""
    directory = spool_dir()
    if not directory.is_dir():
        return 0
    return sum(1 for path in directory.iterdir() if not path.name.startswith("."))
