"""What a check raises when the target answered, but not what the monitor expects.

Its own module so that each kind of check (engine's HTTP and socket checks, ``dns``)
raises the same exception, which ``engine.classify`` turns into the result's failure
kind and message.
"""

from __future__ import annotations

from telemetry.records import FailureKind


class UnexpectedResponse(Exception):
    """The target answered, but not what the monitor expects: ``kind`` is the result's
    failure kind, the message its text (at most ``records.MAX_ERROR_LENGTH`` characters
    are kept)."""

    def __init__(self, kind: FailureKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
