from __future__ import annotations

import datetime as dt
import json

import pytest

from telemetry.records import CheckResult, FailureKind

NOW = dt.datetime(2026, 11, 28, 12, 0, 0, 123000, tzinfo=dt.UTC)


def make(**overrides) -> CheckResult:
    fields = {
        "monitor_id": 7,
        "scheduled_at": NOW,
        "started_at": NOW + dt.timedelta(milliseconds=40),
        "duration_ms": 120,
        "ok": False,
        "status_code": 503,
        "failure": FailureKind.STATUS,
        "error": "HTTP 503",
        "connect_ms": 3,
        "tls_expires_at": NOW + dt.timedelta(days=30),
    }
    return CheckResult(**{**fields, **overrides})


def test_a_result_survives_the_round_trip_through_json():
    result = make()
    assert CheckResult.from_json(result.to_json()) == result


def test_long_errors_are_cut_to_200_characters():
    assert len(CheckResult.from_json(make(error="x" * 500).to_json()).error) == 200


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"monitor_id": 1}', "missing fields"),
        (json.dumps({**json.loads(make().to_json()), "monitor_id": "7"}), "monitor_id must be"),
        (json.dumps({**json.loads(make().to_json()), "monitor_id": True}), "monitor_id must be"),
        (json.dumps({**json.loads(make().to_json()), "ok": 1}), "ok must be true or false"),
        (json.dumps({**json.loads(make().to_json()), "failure": "gremlins"}), "unknown failure"),
        (json.dumps({**json.loads(make().to_json()), "extra": 1}), "unknown fields"),
        (json.dumps({**json.loads(make().to_json()), "duration_ms": -5}), "duration_ms must be"),
    ],
)
def test_malformed_entries_raise_value_error_saying_what_is_wrong(raw, message):
    with pytest.raises(ValueError, match=message):
        CheckResult.from_json(raw)
