"""The probe task's message: slots with what to check, from the dispatcher to a worker."""

from __future__ import annotations

import json

import pytest
from django.db.models import Field

from monitors.models import Monitor
from monitors.probes import spec_from_monitor
from monitors.probes.spec import spec_from_row
from monitors.slots import (
    SPEC_COLUMNS,
    WIRE_DEFAULTS,
    Slot,
    message_decode,
    message_encode,
    spec_encode,
    spec_row,
)
from tests.factories import MonitorFactory


def spec_of(monitor: Monitor) -> dict:
    [values] = Monitor.objects.filter(pk=monitor.pk).values_list(*SPEC_COLUMNS)
    return spec_encode(values)


def over_the_wire(message):
    """What a worker gets: Celery's json serializer there and back."""
    args, kwargs = message
    return json.loads(json.dumps(args)), json.loads(json.dumps(kwargs))


def test_the_wire_defaults_are_the_models_defaults():
    # Not required for reading a message (they are fixed with its version), but a spec
    # stays small only while they agree. If a model default changes, keep the wire's.
    for name in SPEC_COLUMNS:
        field = Monitor._meta.get_field(name)
        assert isinstance(field, Field)
        if field.has_default():
            assert WIRE_DEFAULTS[name] == field.get_default(), name
        else:
            assert name in ("url", "ping_max_rtt_ms"), name


@pytest.mark.django_db
def test_a_plain_http_monitor_travels_as_its_url():
    monitor = MonitorFactory(url="https://shop.example.test/", timeout_seconds=10)

    assert spec_of(monitor) == {"url": "https://shop.example.test/"}


@pytest.mark.django_db
def test_every_kind_of_monitor_is_checked_as_it_was_sent():
    monitors = [
        MonitorFactory(
            headers={"X-Probe": "1"},
            expected_status_codes="200-299,301",
            keyword="up",
            keyword_mode="absent",
            max_body_kib=64,
            json_assertions=[{"path": "a.b", "op": "==", "value": 3}],
            timeout_seconds=7,
            connect_to="127.0.0.2",
            tls_verify=False,
        ),
        MonitorFactory(method="POST", body='{"ping": true}'),
        MonitorFactory(
            kind="dns",
            url="dns://shop.example.test",
            dns_record_type="TXT",
            dns_resolver="[::1]:5353",
            dns_expected=["v=spf1 -all", "google-site-verification=x"],
            dns_match="any",
        ),
        MonitorFactory(kind="ping", url="ping://127.0.0.1", ping_count=5, ping_max_rtt_ms=80),
        MonitorFactory(kind="tcp", url="tcp://127.0.0.1:25"),
    ]
    slots = [Slot(1_000 + n, m.pk, spec_of(m)) for n, m in enumerate(monitors)]

    args, kwargs = over_the_wire(message_encode(slots))
    received = message_decode(*args, version=kwargs["v"], specs=kwargs["specs"])

    assert received == slots
    for slot, monitor in zip(received, monitors, strict=True):
        assert slot.spec is not None
        assert spec_from_row(spec_row(slot.monitor_id, slot.spec)) == spec_from_monitor(monitor)


def test_a_version_1_message_gives_slots_without_specs():
    assert message_decode([[7, 1_000], [8, 2_000]]) == [Slot(1_000, 7), Slot(2_000, 8)]
    assert all(slot.spec is None for slot in message_decode([[7, 1_000]]))


def test_a_message_of_an_unknown_version_is_refused():
    with pytest.raises(ValueError, match="version 3"):
        message_decode([[7, 1_000]], version=3, specs=[{"url": "http://a.test/"}])


def test_a_slot_without_a_spec_is_never_sent():
    with pytest.raises(ValueError, match="monitor 7 has no spec"):
        message_encode([Slot(1_000, 7)])


@pytest.mark.django_db
def test_check_now_sends_the_monitors_spec(probes_queue, django_capture_on_commit_callbacks):
    from monitors.services import monitors_check_now

    monitor = MonitorFactory(keyword="operational")

    with django_capture_on_commit_callbacks(execute=True):
        monitors_check_now(monitor_ids=[monitor.pk])

    [message] = probes_queue()
    args, kwargs = message.payload[0], message.payload[1]
    [slot] = message_decode(*args, version=kwargs["v"], specs=kwargs["specs"])
    assert slot.monitor_id == monitor.pk
    assert slot.spec == {"url": monitor.url, "keyword": "operational"}
