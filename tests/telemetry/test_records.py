from __future__ import annotations

import datetime as dt
import json

import pytest

from telemetry.records import (
    WIRE_FIELDS,
    CheckResult,
    FailureKind,
    payload_decode,
    payload_encode,
    to_epoch_ms,
    wire_rows_check,
)

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


def make_named() -> dict:
    return dict(zip(WIRE_FIELDS, make().to_wire(), strict=True))


def check(rows, *, now_ms=None):
    now_ms = now_ms or to_epoch_ms(NOW)
    return wire_rows_check(rows, oldest_ms=now_ms - 86_400_000, newest_ms=now_ms + 86_400_000)


def test_a_result_survives_the_round_trip_through_the_buffer_format():
    results = [make(), make(monitor_id=8, ok=True, failure=None, error="", tls_expires_at=None)]

    rows = payload_decode(payload_encode(results))

    good, bad = check(rows)
    assert bad == []
    assert [CheckResult.from_wire(row) for row in good] == results


def test_a_result_in_the_named_form_of_earlier_releases_is_still_read():
    [row] = payload_decode(json.dumps(make_named()).encode())

    assert CheckResult.from_wire(check([row])[0][0]) == make()


@pytest.mark.parametrize("kind", list(FailureKind))
def test_every_failure_kind_fits_its_columns_and_passes_the_wire_check(kind):
    # check_result.failure is VARCHAR(16), and so is Incident.first_failure_kind.
    assert len(kind.value) <= 16

    good, bad = check(payload_decode(payload_encode([make(failure=kind)])))

    assert bad == [] and CheckResult.from_wire(good[0]).failure is kind


def test_long_errors_are_cut_to_200_characters():
    [row] = payload_decode(payload_encode([make(error="x" * 500)]))
    assert len(row[7]) == 200
    row[7] = "y" * 500  # a producer that does not cut them
    assert len(check([row])[0][0][7]) == 200


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json", "not JSON"),
        (b"7", "not a JSON array of results"),
        (b'{"monitor_id": 1}', "missing fields"),
        (json.dumps({**make_named(), "x": 1}), "unknown fields"),
    ],
)
def test_an_unreadable_entry_raises_value_error_saying_what_is_wrong(raw, message):
    with pytest.raises(ValueError, match=message):
        payload_decode(raw)


def with_field(name, value):
    row = make().to_wire()
    row[WIRE_FIELDS.index(name)] = value
    return row


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ([1, 2], "not a list of the 13 result fields"),
        ({"monitor_id": 7}, "not a list of the 13 result fields"),
        (with_field("monitor_id", "7"), "monitor_id must be an integer from 1"),
        (with_field("monitor_id", True), "monitor_id must be an integer from 1"),
        (with_field("monitor_id", 2**63), "monitor_id must be an integer from 1"),
        (with_field("ok", 1), "ok must be true or false"),
        (with_field("failure", "gremlins"), "unknown failure kind"),
        (with_field("duration_ms", -5), "duration_ms must be an integer from 0 to 4294967295"),
        (with_field("status_code", 70_000), "status_code must be an integer from 0 to 65535"),
        (with_field("dns_ms", 1.5), "dns_ms must be an integer"),
        (with_field("error", None), "error must be a string"),
        (with_field("tls_expires_at", 10**16), "tls_expires_at must be an integer"),
        (with_field("scheduled_at", 1000), "outside the stored window"),
    ],
)
def test_a_malformed_row_is_set_apart_with_the_reason(row, message):
    good_row = make(monitor_id=9).to_wire()

    good, bad = check([good_row, row])

    assert good == [good_row]
    [(refused, reason)] = bad
    assert refused == row and message in reason
