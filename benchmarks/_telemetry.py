"""Shared set-up for the telemetry benchmarks (ingest, retention, crash).

Private (underscore) so the harness does not take it for a scenario. Everything runs
against the database in DATABASE_URL and the Redis database in REDIS_URL; the
benchmarks empty the telemetry tables and the result stream of that database only.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import time
from collections.abc import Sequence

BENCH_USER = "bench-telemetry"
TABLES = (
    "check_result",
    "check_rollup_hourly",
    "check_rollup_daily",
    "check_rollup_pending",
    "monitor_rollup_summary",
    "check_summary_pending",
)


def setup_django() -> None:
    """Configure Django when a module runs on its own (the harness may have already)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sentinel.settings")
    import django
    from django.apps import apps

    if not apps.ready:
        django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def ensure_monitors(count: int) -> list[int]:
    """Ids of ``count`` monitors owned by the benchmark user (created in bulk if missing)."""
    from django.contrib.auth.models import User

    from monitors.models import Monitor

    owner, _ = User.objects.get_or_create(username=BENCH_USER)
    existing = list(Monitor.objects.filter(owner=owner).order_by("id").values_list("id", flat=True))
    missing = count - len(existing)
    if missing > 0:
        Monitor.objects.bulk_create(
            [
                Monitor(
                    owner=owner,
                    project_id=owner.personal_project.pk,
                    name=f"bench {n}",
                    url=f"http://127.0.0.1:9/{n}",
                )
                for n in range(len(existing), count)
            ],
            batch_size=5000,
        )
        existing = list(
            Monitor.objects.filter(owner=owner).order_by("id").values_list("id", flat=True)
        )
    return existing[:count]


def make_results(
    monitor_ids: Sequence[int],
    count: int,
    *,
    seed: int = 4,
    offset: int = 0,
    start: dt.datetime | None = None,
    outages: bool = False,
) -> list:
    """``count`` results as the probe workers produce them: every monitor once a
    minute, in scheduling order, 5% failures, latencies spread like real sites; with
    ``outages``, some monitors also fail long enough to be confirmed (``in_outage``)."""
    from telemetry.records import CheckResult, FailureKind

    rng = random.Random(seed + offset)
    start = start or results_start()
    results = []
    per_minute = len(monitor_ids)
    for n in range(offset, offset + count):
        ok = rng.random() > 0.05 and not (outages and in_outage(n % per_minute, n // per_minute))
        scheduled = start + dt.timedelta(minutes=n // per_minute, milliseconds=n % per_minute)
        duration = int(rng.lognormvariate(5, 0.8)) if ok else 10_000
        results.append(
            CheckResult(
                monitor_id=monitor_ids[n % per_minute],
                scheduled_at=scheduled,
                started_at=scheduled + dt.timedelta(milliseconds=rng.randint(0, 900)),
                duration_ms=duration,
                ok=ok,
                status_code=200 if ok else None,
                failure=None if ok else FailureKind.TIMEOUT,
                error="" if ok else "timed out after 10 s",
                dns_ms=rng.randint(1, 30),
                connect_ms=rng.randint(1, 50),
                tls_ms=rng.randint(5, 80),
                ttfb_ms=max(1, duration - 20),
            )
        )
    return results


def in_outage(index: int, minute: int) -> bool:
    """Whether the ``index``-th monitor fails on purpose in ``minute``: every tenth is down
    for 3 checks of every 20 minutes (an incident opens and closes), and the fifth of
    every ten fails from minute 7 of every 20 to its end (an incident still open after
    the last result, whether 10 minutes or 100 are made)."""
    if index % 10 == 0:
        return minute % 20 in (2, 3, 4)
    return index % 10 == 5 and minute % 20 >= 7


def results_start() -> dt.datetime:
    """Twelve hours ago, on the hour: well inside retention, clear of the future."""
    now = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    return now - dt.timedelta(hours=12)


def empty_telemetry() -> None:
    """Empty the raw and rollup tables (TRUNCATE keeps the partitions) and the buffer,
    and give every monitor a new monitor's live state and no incidents: the state is
    what the stored results made it, and with them gone every result pushed again
    would be a late one (``monitors.state``), rebuilt from the rows one monitor at a
    time instead of applied as it comes."""
    from django.db import connection

    from telemetry.buffer import DEAD_LETTER_COUNT_KEY, DEAD_LETTER_KEY, STREAM_KEY, buffer_client
    from telemetry.ingest import PERIODIC_LOCK_KEY

    with connection.cursor() as cursor:
        for table in TABLES:
            cursor.execute(f"TRUNCATE TABLE {table}")
    buffer_client().delete(STREAM_KEY, DEAD_LETTER_KEY, DEAD_LETTER_COUNT_KEY, PERIODIC_LOCK_KEY)
    live_state_reset()


def live_state_reset(monitor_ids: Sequence[int] | None = None) -> None:
    """A new monitor's live state and no incidents for ``monitor_ids`` (all: None)."""
    from monitors.models import Incident, Monitor

    monitors = Monitor.objects.all()
    if monitor_ids is not None:
        monitors = monitors.filter(pk__in=monitor_ids)
    Incident.objects.filter(monitor__in=monitors).delete()
    monitors.update(
        status=Monitor.Status.PENDING,
        consecutive_failures=0,
        consecutive_successes=0,
        last_checked_at=None,
        recent_failures=0,
        state_checkpoints=[],
    )


def push_all(results: Sequence, *, chunk: int = 5000) -> float:
    """Push results into the buffer as probe workers do; returns the seconds taken."""
    from telemetry.buffer import buffer_push

    started = time.perf_counter()
    for offset in range(0, len(results), chunk):
        buffer_push(results=results[offset : offset + chunk])
    return time.perf_counter() - started


def global_status(name: str) -> int:
    """A server-wide status counter (the benchmarks run with the machine otherwise idle)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW GLOBAL STATUS LIKE %s", [name])
        return int(cursor.fetchone()[1])


def count_rows(table: str = "check_result") -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {table}")  # noqa: S608 (a constant name)
        return int(cursor.fetchone()[0])


def raw_connection(*, local_infile: bool = False, autocommit: bool = True):
    """A plain mysqlclient connection to the configured database."""
    import MySQLdb
    from django.db import connection

    params = connection.get_connection_params()
    params.pop("client_flag", None)
    params.pop("local_infile", None)  # the settings may offer local files; this decides
    conn = MySQLdb.connect(**params, local_infile=1 if local_infile else 0)
    conn.autocommit(autocommit)
    return conn
