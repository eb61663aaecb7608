"""The regions scenario's fault: the farm fails r3's checks of exactly the slots the
benchmark judges by, however late after its slot a check's request reaches the farm.

A check's request reaches the farm some milliseconds after the check started (more on
a loaded machine); a fault window shared by every path put an edge inside some of them
and the benchmark counted the farm's answer as a wrong outcome."""

from __future__ import annotations

import http.client
import time

import pytest

from benchmarks.farm import behaviour, farm_running, fault_write
from benchmarks.regions import FAULTY, REGIONS, fault_windows, outcome_right

PERIOD_MS = 60_000
HALF_MS = PERIOD_MS // 2


def first_paths(kind: str, count: int) -> list[int]:
    return [n for n in range(1000) if behaviour(n).kind == kind][:count]


def status_from(caller: str, port: int, path: int) -> int:
    """GET /t/<path> from ``caller``'s address, as a region's probe worker connects."""
    connection = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=5, source_address=(caller, 0)
    )
    try:
        connection.request("GET", f"/t/{path}")
        return connection.getresponse().status
    finally:
        connection.close()


def judged_right(status: int, *, path: int, slot_ms: int, fault: tuple[int, int]) -> bool:
    """The benchmark's judgment of r3's result of ``slot_ms`` that got ``status``."""
    ok = status == 200
    row = (1, slot_ms, slot_ms, ok, None if ok else "status", FAULTY)
    return outcome_right(row, path, fault)


def test_each_slot_in_the_fault_and_no_other_is_half_a_period_inside_its_paths_window():
    fault = (1_800_000_012_345, 1_800_000_192_345)
    # Phases of every kind, and those of a slot exactly on each edge.
    phases = {n: n * 7_919 % PERIOD_MS for n in range(200)}
    phases |= {1000: fault[0] % PERIOD_MS, 1001: fault[1] % PERIOD_MS}

    windows = fault_windows(phases, fault=fault, period_ms=PERIOD_MS)

    for path, phase in phases.items():
        start, end = (round(edge * 1000) for edge in windows[path])
        first = fault[0] - 3 * PERIOD_MS - (fault[0] - 3 * PERIOD_MS - phase) % PERIOD_MS
        for slot in range(first, fault[1] + 3 * PERIOD_MS, PERIOD_MS):
            if fault[0] <= slot < fault[1]:
                assert start <= slot - HALF_MS and slot + HALF_MS <= end, (path, slot)
            else:
                assert slot + HALF_MS <= start or end <= slot - HALF_MS, (path, slot)


@pytest.mark.parametrize("edge", ["start", "end"])
def test_a_request_that_reaches_the_farm_past_a_fault_edge_is_answered_as_its_slot_is_judged(
    edge, tmp_path, monkeypatch
):
    fault_file = tmp_path / "fault.json"
    monkeypatch.setenv("BENCH_FARM_FAULT_FILE", str(fault_file))
    before, inside = first_paths("fast", 2)
    with farm_running(processes=1) as (farm, _pids):
        now_ms = round(time.time() * 1000)
        # Two checks that started a few milliseconds from the edge, on either side of
        # it; their requests arrive after the edge (the farm reads the file first).
        if edge == "start":
            fault = (now_ms - 40, now_ms + 600_000)
            slots = {before: now_ms - 60, inside: now_ms - 20}
        else:
            fault = (now_ms - 600_000, now_ms - 20)
            slots = {inside: now_ms - 30, before: now_ms - 10}
        windows = fault_windows(
            {path: slot % PERIOD_MS for path, slot in slots.items()},
            fault=fault,
            period_ms=PERIOD_MS,
        )
        fault_write(str(fault_file), caller=REGIONS[FAULTY], windows=windows)
        time.sleep(1.2)  # the farm looks at the file every 0.5 s

        answers = {path: status_from(REGIONS[FAULTY], farm.port, path) for path in slots}
        others = {path: status_from(REGIONS["r1"], farm.port, path) for path in slots}

    assert answers == {before: 200, inside: 503}
    assert others == {before: 200, inside: 200}
    for path, slot in slots.items():
        assert judged_right(answers[path], path=path, slot_ms=slot, fault=fault), path
