from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import types
from typing import Any

import pytest

from benchmarks import runtime
from benchmarks.__main__ import GOALS, derive, largest_fleet, markdown, run_scenario


def test_the_bench_environment_never_points_at_the_real_database_or_redis():
    env = runtime.bench_environment(
        {
            "DATABASE_URL": "mysql://root:pw@127.0.0.1:3306/sentinel",
            "REDIS_URL": "redis://127.0.0.1:6379/0",
        }
    )

    assert env["DATABASE_URL"] == f"mysql://root:pw@127.0.0.1:3306/{runtime.BENCH_DATABASE}"
    assert env["REDIS_URL"] == f"redis://127.0.0.1:6379/{runtime.BENCH_REDIS_DB}"
    assert runtime.BENCH_DATABASE != "sentinel" and runtime.BENCH_REDIS_DB != 0


@pytest.mark.parametrize(
    ("overrides", "names"),
    [
        ({}, "sentinel_bench 14 sentinel_bench sentinel_bench"),
        (
            {"BENCH_DATABASE": "b_own", "BENCH_REDIS_DB": "10", "BENCH_VHOST": "v_own"},
            "b_own 10 v_own b_own",
        ),
    ],
)
def test_the_bench_names_default_to_sentinel_bench_and_can_be_a_runs_own(overrides, names):
    # A fresh interpreter: the names are read once, when benchmarks.runtime is imported.
    env = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_")} | overrides
    shown = subprocess.run(
        [
            sys.executable,
            "-c",
            "from benchmarks import runtime as r; "
            "print(r.BENCH_DATABASE, r.BENCH_REDIS_DB, r.BENCH_VHOST, r.LOCK_NAME)",
        ],
        cwd=runtime.ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )

    assert shown.stdout.split() == names.split()


def test_stop_all_ends_every_process_group_it_started():
    # A child that starts a grandchild: both must be gone after stop_all.
    child = runtime.spawn(
        [
            sys.executable,
            "-c",
            "import subprocess,time; subprocess.Popen(['sleep','60']); time.sleep(60)",
        ]
    )
    time.sleep(0.3)
    group = os.getpgid(child.pid)

    runtime.stop_all()

    assert child.poll() is not None
    for _ in range(50):  # the kernel reaps the orphaned grandchild a moment later
        alive = subprocess.run(["pgrep", "-g", str(group)], capture_output=True, check=False)
        if alive.stdout == b"":
            break
        time.sleep(0.05)
    assert alive.stdout == b""


def test_percentile_is_the_products_percentile():
    values = list(range(1, 101))
    assert runtime.percentile(values, 0.5) == 50
    assert runtime.percentile(values, 0.99) == 99
    assert runtime.percentile([7.0], 0.99) == 7.0


def test_goals_are_judged_and_missed_goals_are_shown_plainly():
    report: dict[str, Any] = {
        "started_at": "now",
        "scale": "quick",
        "machine": {},
        "ingest.rows_per_second": 30_000,
        "ingest.load_data_rows_per_second": 90_000,
        "crash.lost": 0,
    }

    derive(report)
    table = markdown(report)

    assert report["ingest.load_data_ratio"] == pytest.approx(0.333, abs=0.001)
    assert report["goals"]["ingest.load_data_ratio"]["met"] is False
    assert report["goals"]["crash.lost"]["met"] is True
    assert "| ingest.load_data_ratio | 0.333 | ingest >= 60% of LOAD DATA | **NO** |" in table
    assert "Not measured in this run:" in table
    assert len({goal.key for goal in GOALS}) == len(GOALS)


def fleet(monitors: int, **figures: float) -> dict[str, float]:
    return {"monitors": monitors, "schedule_lag_p99_s": 0.2, "skipped_checks": 0,
            "duplicate_checks": 0, "wrong_outcomes": 0} | figures  # fmt: skip


@pytest.mark.parametrize(
    ("reference", "larger", "largest"),
    [
        (fleet(100_000), fleet(200_000), 200_000),
        (fleet(100_000), fleet(200_000, schedule_lag_p99_s=2.4), 100_000),
        (fleet(100_000), fleet(200_000, skipped_checks=3), 100_000),
        (fleet(100_000), fleet(200_000, duplicate_checks=1), 100_000),
        (fleet(100_000, wrong_outcomes=1), fleet(200_000, wrong_outcomes=2), 0),
        (fleet(100_000), None, 100_000),  # no second run
        (fleet(100_000, skipped_checks=1), fleet(200_000), 200_000),
    ],
)
def test_the_largest_fleet_is_the_largest_run_that_met_every_fleet_goal(reference, larger, largest):
    report: dict[str, Any] = {f"pipeline.{k}": v for k, v in reference.items()}
    report |= {f"pipeline.fleet_200k.{k}": v for k, v in (larger or {}).items()}

    derive(report)

    assert largest_fleet(report) == report["pipeline.largest_fleet_per_minute"] == largest
    assert report["goals"]["pipeline.largest_fleet_per_minute"]["met"] is (largest >= 200_000)


def test_without_a_pipeline_run_the_largest_fleet_is_not_measured():
    report: dict[str, Any] = {"crash.lost": 0}

    derive(report)

    assert "pipeline.largest_fleet_per_minute" not in report
    assert report["goals"]["pipeline.largest_fleet_per_minute"]["met"] is None


def test_the_quick_harness_runs_real_scenarios_end_to_end(tmp_path):
    # The cheapest two scenarios, through the real harness in its own process (its own
    # bench database, Redis db and vhost), so neither the harness nor they can rot.
    output = tmp_path / "bench.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--quick",
            "--only",
            "retention,crash",
            "--output",
            str(output),
        ],
        cwd=runtime.ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(output.read_text())
    assert not [key for key in report if key.endswith(".error")], report
    assert report["retention.rows"] > 0 and report["retention.drop_partition_s"] > 0
    assert report["crash.results"] > 0
    assert report["goals"]["crash.lost"]["met"] is True
    assert report["goals"]["crash.duplicated"]["met"] is True
    assert report["crash.rollup_mismatches"] == report["crash.rollup_pending_after"] == 0
    assert "| retention.drop_partition_s |" in result.stdout


def test_a_second_run_waits_for_the_bench_lock_and_gives_up_clearly():
    # A run started meanwhile (here, in the same process, on its own connection).
    with (
        runtime.bench_lock(),
        pytest.raises(RuntimeError, match="bench lock stayed taken for 1 s"),
        runtime.bench_lock(wait_seconds=1),
    ):
        pass
    with runtime.bench_lock(wait_seconds=1):  # released when the first run ends
        pass


def test_what_a_scenario_puts_in_the_environment_ends_with_it(monkeypatch):
    from django.db import connection

    def run(*, quick: bool, report: dict[str, object]) -> None:
        # As the regions scenario does: its workers' settings, through the environment.
        os.environ["SENTINEL_REGIONS"] = "r1,r2,r3"
        os.environ["BENCH_FARM_FAULT_FILE"] = "/nowhere/fault.json"
        report["leaky.ran"] = True

    monkeypatch.setitem(sys.modules, "benchmarks.leaky", types.SimpleNamespace(run=run))
    # The scenario runs on the database Django is connected to: no bench database made.
    monkeypatch.setattr(runtime, "BENCH_DATABASE", connection.settings_dict["NAME"])
    monkeypatch.delenv("SENTINEL_REGIONS", raising=False)
    monkeypatch.delenv("BENCH_FARM_FAULT_FILE", raising=False)
    before = dict(os.environ)
    report: dict[str, Any] = {}

    run_scenario("leaky", quick=True, report=report)

    assert report["leaky.ran"] is True and "leaky.error" not in report
    assert dict(os.environ) == before
