"""``python -m benchmarks [--quick] [--only a,b]``: every scale claim, measured side by
side with its naive baseline, on this machine, in one run.

Writes ``benchmarks/results/latest.json`` and prints a Markdown table with each goal
and whether it was met. Uses the ``sentinel_bench`` database, Redis db 14 and the
``sentinel_bench`` RabbitMQ vhost, never the real ones.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib
import json
import os
import platform
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from benchmarks import runtime
from benchmarks.pipeline import FLEET

# statuspage runs right after the pipeline on purpose: it measures the page and the
# overview cold, with the buffer pool full of the pipeline's pages.
SCENARIOS = (
    "pipeline",
    "statuspage",
    "ingest",
    "dashboard",
    "retention",
    "crash",
    "alerting",
    "heartbeats",
    "regions",
    "chaos",
)
# The dashboard's 40-million-row dataset takes many minutes to build and is kept between
# runs; the ingest, retention and crash scenarios empty the result tables they use, so the
# dashboard gets a database of its own.
SCENARIO_DATABASES = {
    "dashboard": f"{runtime.BENCH_DATABASE}_reporting",
    "statuspage": f"{runtime.BENCH_DATABASE}_reporting",  # the dashboard's dataset
}
RESULTS = Path(__file__).resolve().parent / "results"
PIPELINE_KNOBS = {
    "monitors": "BENCH_PIPELINE_MONITORS",
    "seconds": "BENCH_PIPELINE_SECONDS",
    "warmup": "BENCH_PIPELINE_WARMUP_S",
    "probe_processes": "BENCH_PROBE_PROCESSES",
    "probe_threads": "BENCH_PROBE_THREADS",
    "no_baseline": "BENCH_PIPELINE_NO_BASELINE",
    "fleet_monitors": "BENCH_PIPELINE_FLEET_MONITORS",
    "fleet_seconds": "BENCH_PIPELINE_FLEET_SECONDS",
}


@dataclass(frozen=True)
class Goal:
    key: str
    text: str
    met: Callable[[float], bool]


GOALS = (
    Goal("pipeline.schedule_lag_p99_s", "p99 schedule lag < 2 s", lambda v: v < 2),
    Goal("pipeline.skipped_checks", "no skipped checks", lambda v: v == 0),
    Goal("pipeline.duplicate_checks", "no duplicated checks", lambda v: v == 0),
    Goal("pipeline.wrong_outcomes", "no wrong outcomes", lambda v: v == 0),
    Goal("pipeline.busiest_second_over_mean", "busiest second <= 1.5x mean", lambda v: v <= 1.5),
    Goal(
        "pipeline.mysql_transactions_per_1000_results",
        "<= 1 MySQL transaction per 1,000 results",
        lambda v: v <= 1,
    ),
    Goal("pipeline.result_to_mysql_p99_s", "result to MySQL p99 <= 5 s", lambda v: v <= 5),
    Goal(
        "pipeline.largest_fleet_per_minute",
        "largest fleet with p99 lag < 2 s, 0 skipped/duplicated/wrong >= 200,000/min",
        lambda v: v >= 200_000,
    ),
    Goal("ingest.load_data_ratio", "ingest >= 60% of LOAD DATA", lambda v: v >= 0.6),
    Goal("dashboard.series_30d_p95_ms", "30-day series p95 < 50 ms", lambda v: v < 50),
    Goal("dashboard.uptime_30d_p95_ms", "30-day uptime p95 < 50 ms", lambda v: v < 50),
    Goal(
        "dashboard.overview_10k_p95_ms", "overview page (10k monitors) < 200 ms", lambda v: v < 200
    ),
    Goal(
        "statuspage.page_1k_warm_p95_ms",
        "status page (1,000 monitors) warm <= 50 ms",
        lambda v: v <= 50,
    ),
    Goal(
        "statuspage.page_1k_cold_ms",
        "status page (1,000 monitors) cold <= 300 ms",
        lambda v: v <= 300,
    ),
    Goal("statuspage.badge_warm_p95_ms", "badge warm <= 5 ms", lambda v: v <= 5),
    Goal(
        "statuspage.overview_10k_cold_p95_ms",
        "overview page (10k monitors) cold <= 200 ms",
        lambda v: v <= 200,
    ),
    Goal("retention.drop_partition_s", "DROP PARTITION of a day < 1 s", lambda v: v < 1),
    Goal("crash.lost", "no results lost after kill -9", lambda v: v == 0),
    Goal("crash.duplicated", "no results duplicated after kill -9", lambda v: v == 0),
    Goal(
        "crash.state_mismatches",
        "after kill -9: live state = a replay of the rows, every monitor",
        lambda v: v == 0,
    ),
    Goal(
        "crash.incident_mismatches",
        "after kill -9: incidents = a replay of the rows, every monitor",
        lambda v: v == 0,
    ),
    Goal("alerting.notify_latency_p99_s", "notification p99 < 10 s", lambda v: v < 10),
    Goal(
        "alerting.notify_latency_under_pipeline_p99_s",
        "notification p99 <= 2 s with the 100k pipeline running",
        lambda v: v <= 2,
    ),
    Goal("alerting.flapping_notifications", "flapping: <= 3 notifications", lambda v: v <= 3),
    Goal(
        "alerting.duplicates",
        "no duplicate notification without a delivery id in doubt",
        lambda v: v == 0,
    ),
    Goal("alerting.lost", "no notification lost after kill -9 of its worker", lambda v: v == 0),
    Goal(
        "regions.schedule_lag_p99_s",
        "3 regions, 100k checks/min: p99 schedule lag <= 2 s in every region",
        lambda v: v <= 2,
    ),
    Goal("regions.skipped_checks", "3 regions: no skipped checks in any region", lambda v: v == 0),
    Goal("regions.duplicate_checks", "3 regions: no duplicated checks", lambda v: v == 0),
    Goal("regions.wrong_outcomes", "3 regions: no wrong outcomes", lambda v: v == 0),
    Goal(
        "regions.fault_incidents",
        "one region's path fails for the window: no incident on a healthy monitor",
        lambda v: v == 0,
    ),
    Goal(
        "heartbeats.pings_per_second",
        ">= 2,500 pings/s through the web tier beside 10,000 HTTP monitors",
        lambda v: v >= 2500,
    ),
    Goal("heartbeats.ping_p99_ms", "ping p99 <= 50 ms", lambda v: v <= 50),
    Goal("heartbeats.pings_lost", "no ping answered 200 lost", lambda v: v == 0),
    Goal("heartbeats.ping_errors", "no ping refused or failed", lambda v: v == 0),
    Goal("heartbeats.stopped_not_down", "every stopped heartbeat down", lambda v: v == 0),
    Goal(
        "heartbeats.down_after_deadline_max_s",
        "a stopped heartbeat down within 60 s of its grace running out",
        lambda v: v <= 60,
    ),
    Goal("heartbeats.running_down", "no running heartbeat down", lambda v: v == 0),
    Goal(
        "chaos.results_lost",
        "outage drills: 0 results lost (each slot stored or skipped by design and caught up)",
        lambda v: v == 0,
    ),
    Goal("chaos.alerts_lost", "outage drills: 0 down/up alerts lost", lambda v: v == 0),
    Goal(
        "chaos.alerts_duplicated",
        "outage drills: 0 duplicate alerts without a delivery id in doubt",
        lambda v: v == 0,
    ),
    Goal(
        "chaos.recovery_max_s",
        "outage drills: buffer and spool drained <= 60 s after each return",
        lambda v: v <= 60,
    ),
)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    os.environ.update(runtime.bench_environment(dict(os.environ)))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sentinel.settings")
    install_signal_handlers()
    report: dict[str, Any] = {"started_at": now_iso(), "scale": "quick" if args.quick else "full"}
    try:
        prepare_database()
        with runtime.bench_lock():
            report["machine"] = machine_facts()
            for name in args.only:
                run_scenario(name, quick=args.quick, report=report)
    finally:
        runtime.stop_all()
    report["finished_at"] = now_iso()
    if args.merge:
        report = merged(report, previous=args.output, scenarios=args.only)
    derive(report)
    write(report, args.output)
    print(markdown(report))
    return 0


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small scale, about 4 minutes")
    parser.add_argument(
        "--only",
        type=lambda text: [s.strip() for s in text.split(",") if s.strip()],
        default=list(SCENARIOS),
        help=f"comma-separated scenarios (default: all of {', '.join(SCENARIOS)})",
    )
    parser.add_argument("--output", type=Path, default=RESULTS / "latest.json")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="replace only these scenarios' figures in --output; each run keeps its date",
    )
    # Scale knobs of the pipeline scenario (its environment variables, for a sweep).
    parser.add_argument("--monitors", type=int, help="pipeline: monitors at 60 s")
    parser.add_argument("--seconds", type=int, help="pipeline: measured window, seconds")
    parser.add_argument("--warmup", type=int, help="pipeline: seconds before the window")
    parser.add_argument("--probe-processes", type=int, help="pipeline: probe workers")
    parser.add_argument("--probe-threads", type=int, help="pipeline: threads per probe worker")
    parser.add_argument(
        "--no-baseline", action="store_true", help="pipeline: skip the requests loop after"
    )
    parser.add_argument(
        "--fleet-monitors", type=int, help="pipeline: the second, larger run (0: none)"
    )
    parser.add_argument("--fleet-seconds", type=int, help="pipeline: its window, seconds")
    args = parser.parse_args(argv)
    for option, variable in PIPELINE_KNOBS.items():
        value = getattr(args, option)
        if value is not None and value is not False:
            os.environ[variable] = "1" if value is True else str(value)
    unknown = set(args.only) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    return args


def install_signal_handlers() -> None:
    def stop(signum: int, frame: FrameType | None) -> None:
        runtime.stage(f"signal {signum}: stopping every process the benchmark started")
        runtime.stop_all()
        sys.exit(130)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)


def prepare_database() -> None:
    import django
    from django.core.management import call_command

    django.setup()
    runtime.stage(f"database {runtime.BENCH_DATABASE}: create if missing, migrate")
    call_command("ensure_database", verbosity=0)
    call_command("migrate", verbosity=0)


def run_scenario(name: str, *, quick: bool, report: dict[str, Any]) -> None:
    runtime.stage(f"scenario {name}: start ({'quick' if quick else 'full'} scale)")
    started = time.monotonic()
    # What a scenario puts in the environment ends with it: its children would carry
    # it into the next scenario's (the regions scenario's SENTINEL_REGIONS would send
    # the chaos drill's slots to regions that have no worker there).
    environment = dict(os.environ)
    try:
        module = importlib.import_module(f"benchmarks.{name}")
        own = SCENARIO_DATABASES.get(name)
        # Quick and full datasets live apart, so a quick run never discards the full one.
        with database(f"{own}_quick" if own and quick else own or runtime.BENCH_DATABASE):
            module.run(quick=quick, report=report)
    except Exception as exc:
        # One broken scenario must not hide the others' figures; the report says so.
        traceback.print_exc()
        report[f"{name}.error"] = f"{type(exc).__name__}: {exc}"
    finally:
        runtime.stop_all()
        os.environ.clear()
        os.environ.update(environment)
    report[f"{name}.seconds"] = round(time.monotonic() - started, 1)
    runtime.stage(f"scenario {name}: done in {report[f'{name}.seconds']} s")


@contextlib.contextmanager
def database(name: str) -> Iterator[None]:
    """Point Django's default connection (and child processes, through DATABASE_URL) at
    database ``name`` for the duration, creating and migrating it if needed."""
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    original_name = connection.settings_dict["NAME"]
    if name == original_name:
        yield
        return
    # Unset in the environment: the settings' default (a plain `make test` sets none).
    original_url = os.environ.get("DATABASE_URL")
    url = original_url or settings.DATABASE_URL
    connection.close()
    connection.settings_dict["NAME"] = name
    os.environ["DATABASE_URL"] = url.rsplit("/", 1)[0] + f"/{name}"
    try:
        call_command("ensure_database", verbosity=0)
        call_command("migrate", verbosity=0)
        yield
    finally:
        connection.close()
        connection.settings_dict["NAME"] = original_name
        if original_url is None:
            del os.environ["DATABASE_URL"]
        else:
            os.environ["DATABASE_URL"] = original_url


def derive(report: dict[str, Any]) -> None:
    """Ratios the goals are stated in, from the raw figures."""
    real, ceiling = (
        report.get("ingest.rows_per_second"),
        report.get("ingest.load_data_rows_per_second"),
    )
    if isinstance(real, int | float) and isinstance(ceiling, int | float) and ceiling:
        report["ingest.load_data_ratio"] = round(real / ceiling, 3)
    largest = largest_fleet(report)
    if largest is not None:
        report["pipeline.largest_fleet_per_minute"] = largest
    goals = {}
    for goal in GOALS:
        value = report.get(goal.key)
        goals[goal.key] = {
            "goal": goal.text,
            "met": bool(goal.met(value)) if isinstance(value, int | float) else None,
        }
    report["goals"] = goals


# A fleet holds when its run meets these goals (the pipeline scenario's, judged alike).
FLEET_GOALS = ("schedule_lag_p99_s", "skipped_checks", "duplicate_checks", "wrong_outcomes")
# The pipeline scenario's runs: the reference (100,000 monitors) and the larger one.
FLEET_RUNS = ("pipeline", FLEET)


def largest_fleet(report: dict[str, Any]) -> int | None:
    """The most monitors a minute among the pipeline runs of ``report`` whose figures
    meet every goal of ``FLEET_GOALS``: 0 if none did, None if the pipeline did not run."""
    goals = {goal.key: goal for goal in GOALS}
    runs = [run for run in FLEET_RUNS if isinstance(report.get(f"{run}.monitors"), int)]
    if not runs:
        return None
    held = [
        report[f"{run}.monitors"]
        for run in runs
        if all(
            isinstance(value := report.get(f"{run}.{key}"), int | float)
            and goals[f"pipeline.{key}"].met(value)
            for key in FLEET_GOALS
        )
    ]
    return max(held, default=0)


def machine_facts() -> dict[str, Any]:
    from django.conf import settings
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT VERSION(), @@innodb_buffer_pool_size")
        db_version, pool = cursor.fetchone()
    import redis

    redis_version = redis.Redis.from_url(settings.REDIS_URL).info("server")["redis_version"]
    memory_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "database": db_version,
        "innodb_buffer_pool_mib": int(pool) // (1024 * 1024),
        "redis": redis_version,
        "rabbitmq": rabbitmq_version(),
    }


def rabbitmq_version() -> str:
    from django.conf import settings
    from kombu import Connection

    with Connection(settings.CELERY_BROKER_URL, connect_timeout=3) as conn:
        conn.connect()
        version = conn.connection.server_properties.get("version", "?")
    return version.decode() if isinstance(version, bytes) else str(version)


def merged(report: dict[str, Any], *, previous: Path, scenarios: list[str]) -> dict[str, Any]:
    """``previous``'s figures with those of ``scenarios`` replaced by ``report``'s, and
    ``runs``: one entry per run the figures come from (its scenarios, scale and times),
    so the page says which figure was measured when. Goals are derived again after."""
    if not previous.exists():
        return report
    old = json.loads(previous.read_text())
    ours = tuple(f"{name}." for name in scenarios)
    runs = old.get("runs") or [
        {k: old.get(k) for k in ("scale", "started_at", "finished_at")}
        | {"scenarios": sorted({key.split(".")[0] for key in old if "." in key})}
    ]
    for run in runs:
        run["scenarios"] = [name for name in run["scenarios"] if name not in scenarios]
    runs = [run for run in runs if run["scenarios"]]
    runs.append(
        {k: report.get(k) for k in ("scale", "started_at", "finished_at")}
        | {"scenarios": list(scenarios)}
    )
    kept = {k: v for k, v in old.items() if not k.startswith(ours) and k != "goals"}
    fresh = {k: v for k, v in report.items() if k.startswith(ours)}
    return kept | fresh | {"runs": runs, "machine": report.get("machine", old.get("machine"))}


def write(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, sort_keys=True, default=str) + "\n")
    runtime.stage(f"report written to {path}")


def markdown(report: dict[str, Any]) -> str:
    machine = report.get("machine", {})
    lines = [
        "",
        f"UptimeSentinel benchmarks, {report['scale']} scale, {report['started_at']}",
        f"machine: {machine.get('cores')} cores, {machine.get('memory_gib')} GiB, "
        f"{machine.get('database')}, Redis {machine.get('redis')}, "
        f"RabbitMQ {machine.get('rabbitmq')}",
        "",
        "| figure | value | goal | met |",
        "| --- | --- | --- | --- |",
    ]
    goals = report.get("goals", {})
    skip = {"machine", "goals", "started_at", "finished_at", "scale"}
    for key in sorted(k for k in report if k not in skip):
        goal = goals.get(key, {})
        met = {True: "yes", False: "**NO**", None: ""}[goal.get("met")] if goal else ""
        lines.append(f"| {key} | {report[key]} | {goal.get('goal', '')} | {met} |")
    missing = [g.key for g in GOALS if g.key not in report]
    if missing:
        lines += ["", f"Not measured in this run: {', '.join(missing)}"]
    return "\n".join(lines)


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def entry_point() -> int:
    """``main`` with the project's one-line errors for a service that is down."""
    from core.reachability import service_error_line

    try:
        return main(sys.argv[1:])
    except Exception as exc:
        line = service_error_line(exc)
        if line is None:
            raise
        print(line, file=sys.stderr)
        runtime.stop_all()
        return 3


if __name__ == "__main__":
    sys.exit(entry_point())
