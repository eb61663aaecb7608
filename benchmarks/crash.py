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

Run alone: ``python -m benchmarks.crash [--quick]`` with DATABASE_URL/REDIS_URL set.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks import _telemetry as t

ROOT = Path(__file__).resolve().parent.parent
RECLAIM_SECONDS = 2


def run(*, quick: bool, report: dict[str, object]) -> None:
    t.setup_django()
    from telemetry.buffer import buffer_depth

    total = 10_000 if quick else 1_000_000
    monitors = t.ensure_monitors(1_000 if quick else 10_000)
    t.empty_telemetry()
    start = t.results_start()
    chunk = 50_000
    for offset in range(0, total, chunk):
        t.push_all(t.make_results(monitors, min(chunk, total - offset), offset=offset, start=start))
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
    print(
        f"  drained in {seconds:.0f} s with {kills} kills: {rows:,} rows, "
        f"lost {report['crash.lost']}, duplicated {report['crash.duplicated']}, "
        f"rollup mismatches {report['crash.rollup_mismatches']}"
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


if __name__ == "__main__":
    figures: dict[str, object] = {}
    run(quick="--quick" in sys.argv, report=figures)
    print(json.dumps(figures, indent=2))
