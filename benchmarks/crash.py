"""Crash safety: kill -9 the ingest process at random moments while it drains.

All results are pushed into the Redis buffer first (1,000,000 at full scale), then
``manage.py ingest`` is started, killed with SIGKILL at a random moment 0-2 s (quick:
0-0.3 s) after it stored its first batch (so mid-batch: take, parse, insert, commit or
ack), and restarted, until the buffer is empty. Consumer names
rotate over three, so a restarted process sometimes takes its own pending batch back
at once and sometimes another reclaims it after TELEMETRY_INGEST_RECLAIM_SECONDS
(2 s here). Finally ``manage.py ingest --once`` runs until nothing is pending.

Then it counts: ``crash.lost`` = results pushed minus rows in ``check_result``;
``crash.duplicated`` = rows stored more than once (the primary key makes that 0 by
construction, so it is measured where a replay could really double-count: the
hourly and daily rollups' ``checks`` totals above the row count), and
``crash.rollup_mismatches`` = (monitor, hour) rollups that differ from a GROUP BY
over the raw rows, after the final drain has folded the pending deltas
(``crash.rollup_pending_after``: results whose deltas are still unfolded, 0).
``crash.kills`` says how many times the process was killed.

Live state and incidents: the monitors start from a new monitor's state (pending, no
streaks, no incidents), and some fail long enough to be confirmed
(``_telemetry.in_outage``), so incidents open and close. After the final drain, each
monitor's live state in ``monitors_monitor`` (status, streaks, last check, recent
outcomes) and its incidents (started_at and ended_at of each) are compared with a
replay of its stored rows in slot order (``monitors.state.state_replay``):
``crash.state_mismatches`` and ``crash.incident_mismatches`` count the monitors that
differ (goal 0), ``crash.incidents_replayed`` says how many incidents the replay opens.
A batch reclaimed after a kill lands after later slots of the same monitors: exactly
what this check is for, so no monitor is left out.

Run alone: ``python -m benchmarks.crash [--quick]`` with DATABASE_URL/REDIS_URL set.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from benchmarks import _telemetry as t

if TYPE_CHECKING:  # Django's apps load only once the scenario has set Django up
    from monitors.state import LiveState, StateChange
    from telemetry.records import CheckResult

ROOT = Path(__file__).resolve().parent.parent
RECLAIM_SECONDS = 2


def run(*, quick: bool, report: dict[str, object]) -> None:
    t.setup_django()
    from telemetry.buffer import buffer_depth

    total = 10_000 if quick else 1_000_000
    monitors = t.ensure_monitors(1_000 if quick else 10_000)
    t.empty_telemetry()  # the monitors start from a new monitor's state
    start = t.results_start()
    chunk = 50_000
    for offset in range(0, total, chunk):
        size = min(chunk, total - offset)
        t.push_all(t.make_results(monitors, size, offset=offset, start=start, outages=True))
    print(f"crash: {buffer_depth():,} results in the buffer")

    env = {
        **os.environ,
        "TELEMETRY_INGEST_RECLAIM_SECONDS": str(RECLAIM_SECONDS),
        "LOG_LEVEL": "WARNING",
    }
    rng = random.Random(1)
    kills = 0
    started = time.perf_counter()
    while buffer_depth() > 0 and (not quick or kills < 3):
        process = _ingest(["--consumer", f"crash-{kills % 3}"], env)
        _wait_until_draining(process, buffer_depth)
        time.sleep(rng.uniform(0.0, 0.3) if quick else rng.uniform(0.0, 2.0))
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            kills += 1
        process.wait()
        print(f"  kill {kills}: {buffer_depth():,} results left")
    # At least one final drain, even when the buffer is already empty: it also folds the
    # rollup deltas that the killed loops committed but never folded (they fold when
    # idle or every 30 s, and none lived that long).
    while True:
        time.sleep(RECLAIM_SECONDS)  # let the killed consumers' batches become reclaimable
        _ingest(["--once", "--consumer", "crash-final"], env).wait()
        if buffer_depth() == 0:
            break
    seconds = time.perf_counter() - started
    from telemetry.rollups import rollups_pending

    report["crash.rollup_pending_after"] = rollups_pending().results

    rows = t.count_rows()
    report["crash.results"] = total
    report["crash.kills"] = kills
    report["crash.lost"] = total - rows
    report["crash.duplicated"] = max(
        _sum_checks("check_rollup_hourly") - rows, _sum_checks("check_rollup_daily") - rows, 0
    )
    report["crash.rollup_mismatches"] = _rollup_mismatches()
    report.update(_replay_report(monitors))
    print(
        f"  drained in {seconds:.0f} s with {kills} kills: {rows:,} rows, "
        f"lost {report['crash.lost']}, duplicated {report['crash.duplicated']}, "
        f"rollup mismatches {report['crash.rollup_mismatches']}; against a replay of the "
        f"rows ({report['crash.incidents_replayed']} incidents), live state differs for "
        f"{report['crash.state_mismatches']} monitors, incidents for "
        f"{report['crash.incident_mismatches']}"
    )
    t.empty_telemetry()


def _wait_until_draining(process: subprocess.Popen[bytes], depth: Callable[[], int]) -> None:
    """Until the process has stored its first batch: kills during Django's start-up
    (seconds on a busy machine) would test nothing and stall the drain."""
    before, deadline = depth(), time.monotonic() + 120
    while depth() == before and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)


def _ingest(arguments: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "manage.py", "ingest", *arguments],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
    )


def _sum_checks(table: str) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COALESCE(SUM(checks), 0) FROM {table}")  # noqa: S608
        return int(cursor.fetchone()[0])


def _rollup_mismatches() -> int:
    """Hourly rollup rows whose counts differ from the raw rows' GROUP BY."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*) FROM ("
            "  SELECT monitor_id, DATE_FORMAT(scheduled_at, '%Y-%m-%d %H:00:00') AS hour_start,"
            "    COUNT(*) AS checks, SUM(ok = 0) AS failures,"
            "    SUM(IF(ok = 1, duration_ms, 0)) AS latency_sum_ms"
            "  FROM check_result GROUP BY monitor_id, hour_start"
            ") raw LEFT JOIN check_rollup_hourly r"
            "  ON r.monitor_id = raw.monitor_id AND r.hour_start = raw.hour_start"
            " WHERE r.checks IS NULL OR r.checks <> raw.checks OR r.failures <> raw.failures"
            "  OR r.latency_sum_ms <> raw.latency_sum_ms"
        )
        missing = int(cursor.fetchone()[0])
        cursor.execute(
            "SELECT COUNT(*) FROM check_rollup_hourly r WHERE NOT EXISTS (SELECT 1 FROM "
            "check_result c WHERE c.monitor_id = r.monitor_id AND c.scheduled_at >= r.hour_start "
            "AND c.scheduled_at < r.hour_start + INTERVAL 1 HOUR)"
        )
        return missing + int(cursor.fetchone()[0])


# --- live state and incidents against a replay of the rows ------------------------

Incidents = list[tuple[dt.datetime, dt.datetime | None]]  # (started_at, ended_at), by start


class Verdict(NamedTuple):
    state_differs: bool
    incidents_differ: bool
    incidents_replayed: int


def replay_mismatch(
    *, start: LiveState, rows: Sequence[CheckResult], state: LiveState, incidents: Incidents
) -> Verdict:
    """Whether one monitor's stored live state and incidents differ from a replay of its
    stored ``rows`` from ``start`` (a new monitor's state with its settings)."""
    from monitors.state import state_replay

    expected, changes = state_replay(start, rows)
    replayed = incidents_from(changes)
    return Verdict(
        _live_fields(expected) != _live_fields(state), replayed != sorted(incidents), len(replayed)
    )


def incidents_from(changes: Sequence[StateChange]) -> Incidents:
    """The incidents that status changes make: a change to down opens one at its result's
    slot, the next change to up ends it there (``monitors.state.incidents_apply``)."""
    incidents: Incidents = []
    for change in changes:
        if change.new_status == "down":
            incidents.append((change.result.scheduled_at, None))
        elif change.new_status == "up" and incidents and incidents[-1][1] is None:
            incidents[-1] = (incidents[-1][0], change.result.scheduled_at)
    return incidents


def _live_fields(state: LiveState) -> tuple[object, ...]:
    return (
        state.status,
        state.consecutive_failures,
        state.consecutive_successes,
        state.last_checked_at,
        state.recent_failures,
    )


def _replay_report(monitor_ids: list[int]) -> dict[str, int]:
    live = _live_states(monitor_ids)
    incidents = _incidents(monitor_ids)
    verdicts = [
        replay_mismatch(
            start=_new_state(live[monitor_id]),
            rows=rows,
            state=live[monitor_id],
            incidents=incidents.get(monitor_id, []),
        )
        for monitor_id, rows in _rows_of_each(monitor_ids)
    ]
    return {
        "crash.state_mismatches": sum(v.state_differs for v in verdicts),
        "crash.incident_mismatches": sum(v.incidents_differ for v in verdicts),
        "crash.incidents_replayed": sum(v.incidents_replayed for v in verdicts),
    }


def _live_states(monitor_ids: list[int]) -> dict[int, LiveState]:
    from monitors.models import Monitor
    from monitors.state import LiveState

    rows: Iterable[tuple[Any, ...]] = Monitor.objects.filter(pk__in=monitor_ids).values_list(
        # LiveState's field order.
        "pk", "status", "consecutive_failures", "consecutive_successes", "last_checked_at",
        "confirm_failures", "recover_successes", "recent_failures", "confirm_window",
        "confirm_window_failures",
    )  # fmt: skip
    return {pk: LiveState(*fields) for pk, *fields in rows}


def _new_state(state: LiveState) -> LiveState:
    """A new monitor's state, with the settings of ``state``."""
    from monitors.state import LiveState

    return LiveState(
        "pending", 0, 0, None, state.confirm_failures, state.recover_successes, 0,
        state.confirm_window, state.confirm_window_failures,
    )  # fmt: skip


def _incidents(monitor_ids: list[int]) -> dict[int, Incidents]:
    from monitors.models import Incident

    found: dict[int, Incidents] = {}
    # An incident late results showed was never confirmed stays as the record of its
    # alerts, ended with the reason "revised"; the history of the rows has no such one.
    incidents = (
        Incident.objects.filter(monitor_id__in=monitor_ids)
        .exclude(end_reason=Incident.EndReason.REVISED)
        .order_by("started_at", "pk")
    )
    for incident in incidents.only("monitor_id", "started_at", "ended_at"):
        found.setdefault(incident.monitor_id, []).append((incident.started_at, incident.ended_at))
    return found


def _rows_of_each(monitor_ids: list[int]) -> Iterator[tuple[int, list[CheckResult]]]:
    """Every monitor's stored rows in slot order, monitor by monitor (read as a stream:
    a million rows), and an empty list for a monitor without any."""
    import MySQLdb.cursors

    from core.time import as_utc
    from telemetry.records import CheckResult

    left = set(monitor_ids)
    conn = t.raw_connection()
    try:
        cursor = conn.cursor(MySQLdb.cursors.SSCursor)
        # The slot and the outcome are all that moves the state.
        cursor.execute("SELECT monitor_id, scheduled_at, ok FROM check_result ORDER BY 1, 2")
        stream = itertools.chain.from_iterable(iter(lambda: cursor.fetchmany(10_000), ()))
        for monitor_id, rows in itertools.groupby(stream, key=lambda row: row[0]):
            if monitor_id not in left:
                continue
            left.discard(monitor_id)
            results = [CheckResult(m, as_utc(at), as_utc(at), 0, bool(ok)) for m, at, ok in rows]
            yield monitor_id, results
    finally:
        conn.close()
    for monitor_id in sorted(left):
        yield monitor_id, []


if __name__ == "__main__":
    figures: dict[str, object] = {}
    run(quick="--quick" in sys.argv, report=figures)
    print(json.dumps(figures, indent=2))
