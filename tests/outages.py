"""A service gone away, for the code under test in this process."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.db import connection


@contextlib.contextmanager
def mysql_away() -> Iterator[None]:
    """This process's MySQL connection pointed at a port where nothing listens while the
    block runs, and back afterwards. Outside a test transaction only (``transaction=True``):
    closing the connection inside one would lose it."""
    port = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = "1"
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict["PORT"] = port
