"""The bottom layer: a small library every app may use and which imports no app.

Database helpers (``core.db``), the Redis client (``core.redis``), time conversions
(``core.time``), the outgoing-network policy (``core.netpolicy``), the one
"service unreachable" line (``core.reachability``), the Redis counters of
``/metrics`` (``core.counters``) and the RabbitMQ topology (``core.broker``). The
layering is written down in ``docs/architecture/README.md`` and held by import-linter
(``pyproject.toml``).
"""
