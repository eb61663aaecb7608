from __future__ import annotations

import datetime as dt
import json

import orjson
import pytest

from telemetry.records import (
    STORED_FIELDS,
    WIRE_FIELDS,
    CheckResult,
    FailureKind,
    payload_decode,
    payload_encode,
    to_epoch_ms,
    wire_rows_check,
    wire_rows_decode,
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


def decode(raw: bytes, *, now_ms=None):
    now_ms = now_ms or to_epoch_ms(NOW)
    return wire_rows_decode(raw, oldest_ms=now_ms - 86_400_000, newest_ms=now_ms + 86_400_000)


def test_a_result_survives_the_round_trip_through_the_buffer_format():
    results = [make(), make(monitor_id=8, ok=True, failure=None, error="", tls_expires_at=None)]

    rows = payload_decode(payload_encode(results))

    good, bad = check(rows)
    assert bad == []
    assert [CheckResult.from_wire(row) for row in good] == results


def test_an_entry_decodes_to_the_checked_rows_as_tuples():
    results = [make(), make(monitor_id=8, ok=True, failure=None, error="", tls_expires_at=None)]

    good, bad = decode(payload_encode(results))

    assert bad == []
    assert good == [tuple(result.to_wire()) for result in results]
    assert [CheckResult.from_wire(row) for row in good] == results


def test_the_expiring_certificates_subject_travels_as_the_14th_element():
    result = make(tls_expiring_subject="CN=Test Intermediate CA")

    [row] = payload_decode(payload_encode([result]))
    [good], _ = decode(payload_encode([result]))

    assert len(WIRE_FIELDS) == 15 and WIRE_FIELDS[13] == "tls_expiring_subject"
    assert row[13] == "CN=Test Intermediate CA" and good[13] == row[13]
    assert CheckResult.from_wire(good).tls_expiring_subject == "CN=Test Intermediate CA"
    # Written always, "" when the server's own certificate sets the expiry.
    assert make().to_wire()[13] == ""


def test_the_subject_is_not_a_column_of_check_result_and_the_region_is():
    assert "tls_expiring_subject" not in STORED_FIELDS
    assert (*WIRE_FIELDS[:13], "region") == STORED_FIELDS


def test_the_region_travels_as_the_15th_element():
    result = make(region="eu-west")

    [good], bad = decode(payload_encode([result]))

    assert bad == [] and good[14] == "eu-west"
    assert CheckResult.from_wire(good).region == "eu-west"


def test_it_dead_letters_a_row_whose_region_is_not_a_region_name():
    rows = [make(monitor_id=1).to_wire(), [*make(monitor_id=2).to_wire()[:14], "EU West;"]]

    good, bad = decode(orjson.dumps(rows))

    assert [row[0] for row in good] == [1]
    [(_row, why)] = bad
    assert "region" in why


def test_rows_of_14_elements_from_before_regions_are_read_as_the_local_region():
    rows = [make(monitor_id=n, tls_expiring_subject="CN=x").to_wire()[:14] for n in (1, 2)]

    good, bad = decode(orjson.dumps(rows))

    assert bad == [] and [row[13:] for row in good] == [("CN=x", "local")] * 2


def test_rows_of_13_elements_from_earlier_releases_are_still_read_without_a_subject():
    rows = [make(monitor_id=n).to_wire()[:13] for n in (1, 2)]

    good, bad = decode(orjson.dumps(rows))

    assert bad == []
    assert [row[13] for row in good] == ["", ""] and all(len(row) == 15 for row in good)
    assert CheckResult.from_wire(rows[0]) == make(monitor_id=1)


def test_rows_of_13_and_14_elements_in_one_entry_are_all_read():
    rows = [make(monitor_id=1).to_wire()[:13], make(monitor_id=2).to_wire()]

    good, bad = decode(orjson.dumps(rows))

    assert bad == [] and [row[0] for row in good] == [1, 2]


def test_a_long_subject_is_cut_to_200_characters_like_an_error():
    assert len(make(tls_expiring_subject="x" * 500).to_wire()[13]) == 200
    row = make().to_wire()
    row[13] = "y" * 500  # a producer that does not cut it

    [good], bad = decode(orjson.dumps([row]))

    assert bad == [] and good[13] == "y" * 200


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
    assert len(decode(orjson.dumps([row]))[0][0][7]) == 200


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
    with pytest.raises(ValueError, match=message):
        decode(raw if isinstance(raw, bytes) else raw.encode())


def test_an_entry_in_the_named_form_decodes_to_one_checked_row():
    good, bad = decode(json.dumps(make_named()).encode())

    assert bad == [] and [CheckResult.from_wire(row) for row in good] == [make()]


def with_field(name, value):
    row = make().to_wire()
    row[WIRE_FIELDS.index(name)] = value
    return row


MALFORMED = pytest.mark.parametrize(
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
        (with_field("scheduled_at", to_epoch_ms(NOW) + 2 * 86_400_000), "outside the stored"),
        (with_field("tls_expiring_subject", 5), "tls_expiring_subject must be a string"),
        (with_field("ok", None), "ok must be true or false"),
        (with_field("started_at", None), "started_at must be an integer"),
        ([*make().to_wire(), "extra"], "not a list of the 13 result fields"),
    ],
)


@MALFORMED
def test_a_malformed_row_is_set_apart_with_the_reason(row, message):
    good_row = make(monitor_id=9).to_wire()

    good, bad = check([good_row, row])

    assert good == [tuple(good_row)]  # checked rows are tuples
    [(refused, reason)] = bad
    assert refused == row and message in reason


@MALFORMED
def test_a_malformed_row_of_an_entry_is_set_apart_and_its_good_rows_kept(row, message):
    good_rows = [make(monitor_id=9).to_wire(), make(monitor_id=10).to_wire()]

    good, bad = decode(orjson.dumps([good_rows[0], row, good_rows[1]]))

    assert good == [tuple(r) for r in good_rows]
    [(refused, reason)] = bad
    # The dead letter keeps the row as it came.
    assert orjson.dumps(refused) == orjson.dumps(row) and message in reason
