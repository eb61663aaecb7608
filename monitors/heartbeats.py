"""Heartbeat monitors: their ping routes in Redis, what stored pings do to them, and the
per-minute pass that finds the ones whose ping did not come.

**Pings are results.** The web tier turns a ping into a buffer entry
(``telemetry.buffer.pings``); ingest stores it, and a success or failure ping's result
moves the live state through the same state machine, incidents and alert rules as a
probe's result (``monitors.state``; a heartbeat confirms on the first failure and
recovers on the first success). Here, in ingest's transaction and before that
(``pings_stored``): a paused heartbeat that pinged resumes, and each heartbeat's
``heartbeat_deadline_at`` moves to its new due time plus grace.

**Missed pings are results too.** The dispatcher's per-minute run calls
``heartbeats_missed``: the heartbeats whose deadline has passed get one failed result
("missed") at their deadline, pushed to the buffer like a probe's, so they go down
through the same path; a heartbeat waits for no deadline while it is new, paused or
down after a miss. A ping the web tier took that ingest has not stored yet counts: the
pass reads when each heartbeat last pinged from Redis, ahead of MySQL.

**Routes.** The ping URL's UUID, or the owner's ping key and the monitor's slug, are
fields of one Redis hash naming the monitor id, so the web tier finds the monitor of a
ping without MySQL. It is written after each save commits and rebuilt from MySQL when
it is missing (a flushed or new Redis).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import redis
from django.db import connection, transaction
from django.utils import timezone

from core.db import update_from_values
from core.reachability import unreachable_log
from core.redis import redis_client
from core.time import from_epoch_ms, to_epoch_ms
from monitors.models import Monitor, PingKey
from telemetry.buffer import buffer_push
from telemetry.buffer.pings import last_pings
from telemetry.pings import PingRow, ping_outcome
from telemetry.records import CheckResult, FailureKind

log = logging.getLogger(__name__)

ROUTES_KEY = "sentinel:heartbeat:routes"  # hash: "<uuid>" or "<ping key>/<slug>" -> id
SLUG_ROUTES_KEY = "sentinel:heartbeat:slug-routes"  # hash: id -> its "<key>/<slug>" route
ROUTES_LOCK_KEY = "sentinel:heartbeat:routes-lock"
# A field of the routes hash that no ping URL names: an empty product still has the hash.
ROUTES_MARKER = "-"
ROUTES_CHUNK = 5000
# Heartbeats the pass takes per run: far more than go down in one minute.
MISSED_LIMIT = 50_000

HEARTBEAT = Monitor.Kind.HEARTBEAT


# --- routes ---------------------------------------------------------------------------


def heartbeat_routes(*, monitor: Monitor, ping_key: str | None) -> dict[str, int]:
    """The routes hash fields of one heartbeat monitor: its UUID, and its ping key and
    slug when it has a slug and its owner a key."""
    routes = {str(monitor.heartbeat_uuid): monitor.pk}
    if monitor.heartbeat_slug and ping_key:
        routes[f"{ping_key}/{monitor.heartbeat_slug}"] = monitor.pk
    return routes


def heartbeat_ping_path(monitor: Monitor) -> str:
    """The path of the heartbeat's ping URL, ``/ping/<uuid>``."""
    return f"/ping/{monitor.heartbeat_uuid}"


def heartbeat_slug_ping_path(monitor: Monitor) -> str | None:
    """``/ping/<ping key>/<slug>`` for a heartbeat with a slug, else None."""
    if monitor.kind != HEARTBEAT or not monitor.heartbeat_slug or monitor.owner_id is None:
        return None  # no owner (their account was deleted): no ping key, the UUID URL only
    return f"/ping/{ping_key_of(owner_id=monitor.owner_id)}/{monitor.heartbeat_slug}"


def ping_key_of(*, owner_id: int) -> str:
    """The owner's ping key, made on first use."""
    return PingKey.objects.get_or_create(owner_id=owner_id)[0].key


def heartbeat_routes_save(*, monitor: Monitor) -> None:
    """Once the surrounding transaction commits, point the monitor's ping URLs at it
    (or remove them, when it is no longer a heartbeat). Redis away: logged; the URLs
    work once the routes are rebuilt (``heartbeat_routes_rebuild``)."""
    if monitor.kind == HEARTBEAT:
        owner_id = monitor.owner_id
        key = ping_key_of(owner_id=owner_id) if monitor.heartbeat_slug and owner_id else None
        routes = heartbeat_routes(monitor=monitor, ping_key=key)
    else:
        routes = {}
    uuid, pk = str(monitor.heartbeat_uuid) if monitor.heartbeat_uuid else None, monitor.pk
    transaction.on_commit(lambda: _routes_write(pk, uuid, routes), robust=True)


def heartbeat_routes_delete(*, monitor: Monitor) -> None:
    """Once the deletion commits, its ping URLs answer 404."""
    uuid, pk = str(monitor.heartbeat_uuid) if monitor.heartbeat_uuid else None, monitor.pk
    if uuid is not None:  # the pk now: Django clears it once the deletion is done
        transaction.on_commit(lambda: _routes_write(pk, uuid, {}), robust=True)


def heartbeat_routes_saved(*, instance: Monitor, **_: object) -> None:
    """``post_save`` of a monitor: a heartbeat's routes follow (and a former one's go)."""
    if instance.kind == HEARTBEAT or instance.heartbeat_uuid is not None:
        heartbeat_routes_save(monitor=instance)


def heartbeat_routes_deleted(*, instance: Monitor, **_: object) -> None:
    """``post_delete`` of a monitor."""
    heartbeat_routes_delete(monitor=instance)


def _routes_write(monitor_id: int, uuid: str | None, routes: dict[str, int]) -> None:
    try:
        client = redis_client()
        old = client.hget(SLUG_ROUTES_KEY, monitor_id)
        old_slug = old.decode() if isinstance(old, bytes) else old
        pipe = client.pipeline(transaction=True)
        stale = [r for r in (uuid, old_slug) if r and r not in routes]
        if stale:
            pipe.hdel(ROUTES_KEY, *stale)
        if routes:
            pipe.hset(ROUTES_KEY, mapping=cast("dict[Any, Any]", routes))
        slug_route = next((r for r in routes if "/" in r), None)
        if slug_route:
            pipe.hset(SLUG_ROUTES_KEY, monitor_id, slug_route)
        else:
            pipe.hdel(SLUG_ROUTES_KEY, monitor_id)
        pipe.execute()
    except redis.RedisError as exc:
        then = "its ping URL follows once Redis is back and the routes are rebuilt"
        unreachable_log(log, "redis", exc, then)


def heartbeat_routes_rebuild() -> int:
    """Write every heartbeat's routes to Redis from MySQL (one query, pipelined
    writes), under a short lock so that a crowd of web processes finding the hash
    missing rebuild it once. Returns how many routes were written (0: another process
    holds the lock). Raises ``redis.RedisError``."""
    client = redis_client()
    if not client.set(ROUTES_LOCK_KEY, 1, nx=True, ex=30):
        return 0
    try:
        keys = dict(PingKey.objects.values_list("owner_id", "key"))
        rows = Monitor.objects.filter(kind=HEARTBEAT, heartbeat_uuid__isnull=False).values_list(
            "pk", "owner_id", "heartbeat_uuid", "heartbeat_slug"
        )
        routes: dict[str, int] = {ROUTES_MARKER: 0}
        slugs: dict[int, str] = {}
        for pk, owner_id, uuid, slug in rows.iterator(chunk_size=ROUTES_CHUNK):
            routes[str(uuid)] = pk
            if slug and owner_id in keys:
                slugs[pk] = f"{keys[owner_id]}/{slug}"
                routes[slugs[pk]] = pk
        pipe = client.pipeline(transaction=False)
        items = list(routes.items())
        for offset in range(0, len(items), ROUTES_CHUNK):
            pipe.hset(ROUTES_KEY, mapping=dict(items[offset : offset + ROUTES_CHUNK]))
        if slugs:
            pipe.hset(SLUG_ROUTES_KEY, mapping=cast("dict[Any, Any]", slugs))
        pipe.execute()
        return len(routes) - 1
    finally:
        client.delete(ROUTES_LOCK_KEY)


# --- pings stored ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Verdicts:
    """The success and failure pings of a stored batch, per monitor."""

    first: dict[int, dt.datetime]
    last: dict[int, dt.datetime]


def _verdicts(pings: Iterable[PingRow]) -> _Verdicts:
    first: dict[int, dt.datetime] = {}
    last: dict[int, dt.datetime] = {}
    for monitor_id, _start, received_us, kind, exit_status, *_ in pings:
        if ping_outcome(kind, exit_status) is None:
            continue  # /start and /log say nothing of the job's health
        at = from_epoch_ms(received_us // 1000)
        first[monitor_id] = min(first.get(monitor_id, at), at)
        last[monitor_id] = max(last.get(monitor_id, at), at)
    return _Verdicts(first, last)


def heartbeats_pings_apply(*, pings: Sequence[PingRow]) -> None:
    """What stored pings do before their results are applied (in ingest's
    transaction): a paused heartbeat with a success or failure ping resumes just
    before it (so the ping's result finds it running), and each heartbeat's last ping
    and deadline move forward to its newest such ping (never back: an older ping
    replayed from the buffer leaves them)."""
    verdicts = _verdicts(pings)
    if not verdicts.last:
        return
    monitors = Monitor.objects.filter(pk__in=sorted(verdicts.last), kind=HEARTBEAT).only(
        "pk",
        "enabled",
        "heartbeat_period_seconds",
        "heartbeat_cron",
        "heartbeat_tz",
        "heartbeat_grace_seconds",
    )
    rows = []
    for monitor in monitors:
        if not monitor.enabled:
            resumed_at = verdicts.first[monitor.pk] - dt.timedelta(milliseconds=1)
            Monitor.objects.filter(pk=monitor.pk).resume(now=resumed_at)
        at = verdicts.last[monitor.pk]
        rows.append((monitor.pk, _adapt(at), _adapt(monitor.heartbeat_deadline_after(at))))
    update_from_values(
        table=Monitor._meta.db_table,
        columns=("id", "at", "deadline"),
        rows=rows,
        casts={"at": "DATETIME(6)", "deadline": "DATETIME(6)"},
        on="t.id = v.id AND (t.heartbeat_last_ping_at IS NULL OR t.heartbeat_last_ping_at < v.at)",
        assignments="t.heartbeat_last_ping_at = v.at, t.heartbeat_deadline_at = v.deadline",
    )


def _adapt(at: dt.datetime) -> object:
    return connection.ops.adapt_datetimefield_value(at)


# --- missed pings ---------------------------------------------------------------------


@dataclass
class MissedReport:
    missed: int = 0  # heartbeats given a "missed" result
    pinged: int = 0  # past their deadline in MySQL, but a newer ping is in the buffer


def heartbeats_missed(*, now: dt.datetime | None = None) -> MissedReport:
    """Give every heartbeat past its deadline a failed "missed" result at its
    deadline, through the buffer; run once a minute by the dispatcher's task, so a
    heartbeat goes down within a minute (plus ingest's lag) of its grace running out.

    Idempotent: the result's slot is the deadline, so a second run before ingest
    stores the first one pushes the same result, which ingest stores once. The
    deadline is cleared after the push (only where it is still the one read), and the
    heartbeat waits for its next ping. Redis away: logged, nothing done (the next run
    does it). Returns what it did."""
    now = now or timezone.now()
    report = MissedReport()
    due = list(
        Monitor.objects.filter(heartbeat_deadline_at__lte=now, enabled=True, kind=HEARTBEAT).only(
            "pk",
            "heartbeat_deadline_at",
            "heartbeat_last_ping_at",
            "heartbeat_period_seconds",
            "heartbeat_cron",
            "heartbeat_tz",
            "heartbeat_grace_seconds",
        )[:MISSED_LIMIT]
    )
    if not due:
        return report
    try:
        pinged = last_pings(monitor_ids=[m.pk for m in due])
        missed = [m for m in due if not _pinged_since(m, pinged.get(m.pk), now)]
        report.pinged = len(due) - len(missed)
        buffer_push(
            results=[_missed_result(m, now) for m in missed],
            kinds=dict.fromkeys((m.pk for m in missed), HEARTBEAT.value),
        )
    except redis.RedisError as exc:
        unreachable_log(log, "redis", exc, "missed heartbeats are looked for again next minute")
        return report
    report.missed = _deadlines_clear(missed)
    return report


def _pinged_since(monitor: Monitor, pinged_ms: int | None, now: dt.datetime) -> bool:
    """Whether a ping newer than MySQL knows keeps the heartbeat up at ``now``."""
    if pinged_ms is None:
        return False
    pinged = from_epoch_ms(pinged_ms)
    known = monitor.heartbeat_last_ping_at
    return (known is None or pinged > known) and monitor.heartbeat_deadline_after(pinged) > now


def _missed_result(monitor: Monitor, now: dt.datetime) -> CheckResult:
    deadline = monitor.heartbeat_deadline_at
    assert deadline is not None  # selected by it
    last = monitor.heartbeat_last_ping_at
    since = f"since {last:%Y-%m-%d %H:%M:%S} UTC" if last else "yet"
    grace = monitor.heartbeat_grace_seconds
    return CheckResult(
        monitor_id=monitor.pk,
        # Whole milliseconds, as every slot: the same deadline gives the same key.
        scheduled_at=from_epoch_ms(to_epoch_ms(deadline)),
        started_at=now,
        duration_ms=0,
        ok=False,
        failure=FailureKind.MISSED,
        error=f"no ping {since}; the grace time ({grace} s) ran out",
    )


def _deadlines_clear(monitors: Sequence[Monitor]) -> int:
    return update_from_values(
        table=Monitor._meta.db_table,
        columns=("id", "old"),
        rows=[(m.pk, _adapt(m.heartbeat_deadline_at)) for m in monitors if m.heartbeat_deadline_at],
        casts={"old": "DATETIME(6)"},
        on="t.id = v.id AND t.heartbeat_deadline_at = v.old",
        assignments="t.heartbeat_deadline_at = NULL",
    )
