"""The probe task and the operators' tools, with real MariaDB, Redis and RabbitMQ."""

from __future__ import annotations

import time

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from core.time import to_epoch_ms as to_ms
from monitors.models import Monitor
from monitors.tasks import probe_check_batch
from telemetry.ingest import ingest_batch
from telemetry.records import FailureKind
from tests.factories import MonitorFactory
from tests.telemetry.conftest import buffered_results as stream_results


@pytest.mark.django_db
@pytest.mark.usefixtures("telemetry_tables")
def test_a_probe_batch_checks_and_pushes_results_and_ingest_moves_live_state(target, redis_client):
    up = MonitorFactory(url=target.url("/ok"), keyword="operational")
    broken = MonitorFactory(url=target.url("/status/500"), confirm_failures=1)
    hanging = MonitorFactory(url=target.url("/hang"), timeout_seconds=1, confirm_failures=1)
    paused = MonitorFactory(url=target.url("/ok"), enabled=False, status=Monitor.Status.PAUSED)
    slot = timezone.now().replace(microsecond=0)
    slots = [[m.pk, to_ms(slot)] for m in (up, broken, hanging, paused)]

    began = time.monotonic()
    probe_check_batch.apply(args=(slots,)).get()
    elapsed = time.monotonic() - began

    assert elapsed < 2.5  # the hanging target costs its 1 s timeout, no more
    results = {r.monitor_id: r for r in stream_results(redis_client)}
    assert set(results) == {up.pk, broken.pk, hanging.pk}  # the paused one is skipped
    assert results[up.pk].ok and results[up.pk].scheduled_at == slot
    assert results[broken.pk].failure == FailureKind.STATUS
    assert results[hanging.pk].failure == FailureKind.TIMEOUT
    ingest_batch(consumer="test")  # the live state moves where the results are stored
    statuses = dict(Monitor.objects.values_list("pk", "status"))
    assert statuses[up.pk] == Monitor.Status.UP
    assert statuses[broken.pk] == statuses[hanging.pk] == Monitor.Status.DOWN
    assert Monitor.objects.get(pk=up.pk).last_checked_at == slot


@pytest.mark.django_db
@pytest.mark.usefixtures("telemetry_tables")
def test_a_redelivered_batch_does_not_move_the_streaks_twice(target, redis_client):
    monitor = MonitorFactory(url=target.url("/status/500"), confirm_failures=3)
    slots = [[monitor.pk, to_ms(timezone.now())]]

    probe_check_batch.apply(args=(slots,)).get()
    probe_check_batch.apply(args=(slots,)).get()
    ingest_batch(consumer="test")

    monitor.refresh_from_db()
    assert monitor.consecutive_failures == 1
    assert monitor.status == Monitor.Status.PENDING


@pytest.mark.django_db
def test_check_monitor_prints_one_check(target, capsys):
    monitor = MonitorFactory(name="Shop", url=target.url("/ok"))

    call_command("check_monitor", monitor.pk)

    out = capsys.readouterr().out
    assert "Shop" in out and "UP" in out
    assert "status code" in out and "200" in out


@pytest.mark.django_db
def test_check_monitor_exits_non_zero_on_a_failed_check(target, capsys):
    monitor = MonitorFactory(url=target.url("/status/503"))

    with pytest.raises(SystemExit) as exit_info:
        call_command("check_monitor", monitor.pk)

    assert exit_info.value.code == 1
    assert "status: unexpected status 503" in capsys.readouterr().out


@pytest.mark.django_db
def test_check_monitor_names_a_missing_monitor():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no monitor with id 999999"):
        call_command("check_monitor", 999999)


@pytest.mark.django_db
def test_the_migration_installs_the_per_minute_dispatch():
    task = PeriodicTask.objects.get(task="monitors.dispatch.due")

    assert task.enabled and task.crontab.minute == "*"
    assert task.expire_seconds is not None and task.expire_seconds < 60


@pytest.mark.django_db
def test_the_probe_task_builds_the_same_spec_as_the_monitor_does():
    from monitors.probes import spec_from_monitor
    from monitors.probes.spec import PROBE_COLUMNS, spec_from_row

    monitor = MonitorFactory(
        headers={"X-Probe": "1"},
        expected_status_codes="200-299,301",
        keyword="up",
        keyword_mode="absent",
        timeout_seconds=7,
    )

    [row] = Monitor.objects.filter(pk=monitor.pk).values_list(*PROBE_COLUMNS)

    assert spec_from_row(row) == spec_from_monitor(monitor)
    assert spec_from_row(row).expected_status == ((200, 299), (301, 301))
    assert not spec_from_row(row).keyword_must_appear


@pytest.mark.django_db
def test_the_probe_task_builds_the_same_spec_for_dns_monitors_and_json_assertions():
    from monitors.probes import spec_from_monitor
    from monitors.probes.spec import PROBE_COLUMNS, JsonAssertion, spec_from_row

    dns = MonitorFactory(
        kind="dns",
        url="dns://example.test",
        dns_record_type="MX",
        dns_resolver="127.0.0.1:5353",
        dns_expected=["10 mail.example.test"],
        dns_match="exact",
    )
    http = MonitorFactory(json_assertions=[{"path": "a.b", "op": "exists"}])

    for monitor in (dns, http):
        [row] = Monitor.objects.filter(pk=monitor.pk).values_list(*PROBE_COLUMNS)
        assert spec_from_row(row) == spec_from_monitor(monitor)
    [row] = Monitor.objects.filter(pk=dns.pk).values_list(*PROBE_COLUMNS)
    spec = spec_from_row(row)
    assert (spec.dns_record_type, spec.dns_resolver, spec.dns_expected, spec.dns_match) == (
        "MX",
        "127.0.0.1:5353",
        ("10 mail.example.test",),
        "exact",
    )
    [row] = Monitor.objects.filter(pk=http.pk).values_list(*PROBE_COLUMNS)
    assert spec_from_row(row).json_assertions == (JsonAssertion("a.b", "exists", None),)


# Commits matter here: the task must hand its connection back, which it only does
# outside a transaction.
@pytest.mark.django_db(transaction=True)
def test_a_probe_batch_holds_no_database_connection_while_its_checks_run(
    target, redis_client, monkeypatch
):
    from django.db import connection

    from monitors import batch as services

    monitor = MonitorFactory(url=target.url("/ok"))
    held: list[bool] = []
    real_check_batch = services.check_batch

    def check_batch(items, **kwargs):
        held.append(connection.connection is not None)
        return real_check_batch(items, **kwargs)

    monkeypatch.setattr(services, "check_batch", check_batch)
    probe_check_batch.run([[monitor.pk, to_ms(timezone.now())]])

    assert held == [False]
