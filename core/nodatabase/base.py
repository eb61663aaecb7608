"""The database backend of a process that has none: a probe worker without DATABASE_URL.

Django's dummy backend with an error that says why: whatever tries the database fails
at once, naming the settings, instead of connecting to a default. Its vendor,
``core.db.NO_DATABASE_VENDOR``, is how code asks whether a database is there
(``core.db.database_configured``).
"""

from __future__ import annotations

from typing import Any, NoReturn

from django.core.exceptions import ImproperlyConfigured
from django.db.backends.dummy import base as dummy

from core.db import NO_DATABASE_VENDOR


def refuse(*args: Any, **kwargs: Any) -> NoReturn:
    raise ImproperlyConfigured(
        "This process has no database (SENTINEL_ROLE=probe without DATABASE_URL): a probe "
        "worker needs only RabbitMQ and the Redis buffer. Set DATABASE_URL to give it one."
    )


class DatabaseOperations(dummy.DatabaseOperations):
    quote_name = refuse


class DatabaseWrapper(dummy.DatabaseWrapper):
    vendor = NO_DATABASE_VENDOR
    display_name = "no database"
    ops_class = DatabaseOperations
    _cursor = refuse
    ensure_connection = refuse
    _commit = refuse
    _savepoint_commit = refuse
    _set_autocommit = refuse
