from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from alerting.models import AlertRule, NotificationChannel
from configfiles.imports import import_apply
from configfiles.imports.gatus import gatus_read, seconds
from configfiles.imports.kuma import kuma_read
from configfiles.models import ConfigApply
from configfiles.scope import scope_for_owner
from monitors.models import Monitor

pytestmark = pytest.mark.django_db

DATA = Path(__file__).resolve().parents[1] / "data"
KUMA = DATA / "uptime-kuma-backup.json"
GATUS = DATA / "gatus-config.yaml"


SOURCES = {
    "kuma": (kuma_read, KUMA, ConfigApply.Source.UPTIME_KUMA),
    "gatus": (gatus_read, GATUS, ConfigApply.Source.GATUS),
}


def run_import(tool, owner, **kwargs):
    reader, path, source = SOURCES[tool]
    imported = reader(path.read_text())
    return import_apply(scope=scope_for_owner(owner), imported=imported, source=source, **kwargs)


def import_kuma(owner, **kwargs):
    return run_import("kuma", owner, **kwargs)


def test_it_imports_the_uptime_kuma_monitors_it_can_check(user):
    import_kuma(user)
    monitors = {m.name: m for m in Monitor.objects.filter(owner=user)}
    assert set(monitors) == {
        "Website",
        "Website (2)",
        "Shop keyword",
        "Database port",
        "Gateway ping",
        "MX record",
        "Nightly job",
    }
    site = monitors["Website"]
    assert (site.kind, site.url, site.confirm_failures) == ("http", "https://www.example.com/", 3)
    assert site.timeout_seconds == 48
    assert list(site.tags.values_list("name", flat=True)) == ["production"]
    shop = monitors["Shop keyword"]
    assert (shop.keyword, shop.keyword_mode) == ("Out of service", "absent")
    assert shop.expected_status_codes == "200-299,301"
    assert shop.headers["X-Probe"] == "kuma"
    assert shop.headers["Authorization"] == "Basic cHJvYmU6c2VjcmV0"
    db = monitors["Database port"]
    assert (db.url, db.interval_seconds, db.enabled) == ("tcp://db.example.com:5432", 30, False)
    assert monitors["Gateway ping"].url == "ping://gw.example.com"
    job = monitors["Nightly job"]
    assert (job.kind, job.heartbeat_period_seconds, job.heartbeat_grace_seconds) == (
        "heartbeat",
        86400,
        1800,
    )
    assert AlertRule.objects.get(monitor=job).kind == "down"
    mx = monitors["MX record"]
    assert (mx.url, mx.dns_record_type, mx.dns_resolver) == ("dns://example.com", "MX", "1.1.1.1")


def test_it_imports_kuma_notifications_as_channels_and_rules(user):
    import_kuma(user)
    channels = {c.name: c for c in NotificationChannel.objects.filter(owner=user)}
    assert set(channels) == {"Ops mail", "Ops Slack"}
    assert channels["Ops mail"].config == {"address": "ops@example.com"}
    assert channels["Ops Slack"].kind == "slack"
    rules = AlertRule.objects.filter(monitor__name="Website").order_by("kind")
    assert [(r.kind, r.threshold) for r in rules] == [("down", 3), ("tls_expiry", 21)]
    assert sorted(rules[0].channels.values_list("name", flat=True)) == ["Ops Slack", "Ops mail"]


def test_it_reports_what_it_skipped_from_kuma_and_why(user):
    report = import_kuma(user)
    skipped = "\n".join(report.skipped)
    assert "notification 'Pager bot': provider 'telegram'" in skipped
    assert "monitor 'Services': a group" in skipped
    assert "monitor 'Container': monitor type 'docker' is not supported" in skipped
    assert "monitor 'Inverted': upside-down mode" in skipped
    assert "monitor 'Broken URL': refused by validation (url:" in skipped
    assert len(report.skipped) == 5
    notes = "\n".join(report.notes)
    assert "monitor 'Database port': interval 20 s is outside 30-86400 s; set to 30 s" in notes
    assert "basic auth became an Authorization header" in notes
    assert "monitor 'Nightly job': a heartbeat now: point the job at its new ping URL" in notes
    # 2 tags, 2 channels, 7 monitors, 4 alert rules.
    assert report.applied.summary().startswith("15 created")


def test_importing_the_same_kuma_backup_twice_changes_nothing(user):
    import_kuma(user)
    again = import_kuma(user)
    assert not again.applied.changed


def test_a_dry_run_import_changes_nothing(user):
    report = import_kuma(user, dry_run=True)
    assert report.applied.changed
    assert not Monitor.objects.exists() and not NotificationChannel.objects.exists()


def test_it_refuses_a_file_that_is_not_a_kuma_backup(user, tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"monitors": []}')
    with pytest.raises(CommandError, match="not an Uptime Kuma backup: no monitorList"):
        call_command("import_uptime_kuma", str(path), owner=user.username)


def test_the_kuma_command_prints_the_report(user, capsys):
    call_command("import_uptime_kuma", str(KUMA), owner=user.username)
    out = capsys.readouterr().out
    assert "+ monitor 'Shop keyword'" in out
    assert "skipped: monitor 'Container'" in out
    assert out.rstrip().endswith("5 skipped")


def import_gatus(owner):
    return run_import("gatus", owner)


def test_it_imports_gatus_endpoints_with_their_conditions(user):
    import_gatus(user)
    monitors = {m.name: m for m in Monitor.objects.filter(owner=user)}
    # "api ip" too: its unsupported conditions are skipped, the endpoint is not.
    assert set(monitors) == {
        "front-end",
        "login page",
        "postgres",
        "gateway",
        "dns example",
        "api ip",
    }
    front = monitors["front-end"]
    assert (front.interval_seconds, front.confirm_failures) == (300, 3)
    assert front.json_assertions == [{"path": "status", "op": "==", "value": "UP"}]
    assert front.expected_status_codes == "200"
    assert list(front.tags.values_list("name", flat=True)) == ["core"]
    login = monitors["login page"]
    assert (login.method, login.keyword, login.tls_verify) == ("POST", "Sign in", False)
    assert (login.expected_status_codes, login.timeout_seconds) == ("100-499", 5)
    assert login.headers == {"Content-Type": "application/json"}
    assert monitors["gateway"].url == "ping://gw.example.com"
    dns = monitors["dns example"]
    assert (dns.url, dns.dns_resolver, dns.dns_expected, dns.dns_match) == (
        "dns://example.com",
        "8.8.8.8",
        ["93.184.215.14"],
        "any",
    )


def test_it_turns_gatus_alerts_and_thresholds_into_rules(user):
    import_gatus(user)
    rules = {r.kind: r for r in AlertRule.objects.filter(monitor__name="front-end")}
    assert {k: r.threshold for k, r in rules.items()} == {
        "down": 3,
        "latency": 300,
        "tls_expiry": 2,
    }
    assert list(rules["down"].channels.values_list("name", flat=True)) == ["gatus slack"]
    postgres = AlertRule.objects.get(monitor__name="postgres")
    assert list(postgres.channels.values_list("name", flat=True)) == ["gatus email"]
    email = NotificationChannel.objects.get(name="gatus email")
    assert email.config == {"address": "ops@example.com"}


def test_it_reports_the_gatus_parts_it_skipped(user):
    report = import_gatus(user)
    skipped = "\n".join(report.skipped)
    assert "alerting provider 'discord': no channel kind here" in skipped
    assert "alert 'front-end: discord': its provider was not imported" in skipped
    assert "endpoint 'ssh bastion': 'ssh' endpoints are not supported" in skipped
    assert "condition 'api ip: [IP] == 203.0.113.7': no equivalent check here" in skipped
    assert "condition 'api ip: len([BODY].items) > 0'" in skipped
    notes = "\n".join(report.notes)
    assert "monitor 'gateway': interval 10 s is outside" in notes
    assert "only the first of several addresses is kept" in notes


def test_it_reads_go_durations():
    assert seconds("1h30m") == 5400
    assert seconds("500ms") == 0.5
    assert seconds("90") is None
    assert seconds("5 minutes") is None


def test_it_refuses_a_file_that_is_not_gatus(user, tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("services:\n  - web\n")
    with pytest.raises(CommandError, match="no endpoints list"):
        call_command("import_gatus", str(path), owner=user.username)
    assert not ConfigApply.objects.exists()


def test_it_skips_an_unreadable_entry_and_imports_the_rest(user):
    kuma = (
        '{"monitorList": [{"name": "odd", "type": "http", "url": "https://127.0.0.1/",'
        ' "maxretries": "many"}, {"name": "fine", "type": "ping", "hostname": "127.0.0.1"}]}'
    )
    report = import_apply(
        scope=scope_for_owner(user), imported=kuma_read(kuma), source=ConfigApply.Source.UPTIME_KUMA
    )
    assert report.skipped == [
        "monitor 'odd': unreadable (invalid literal for int() with base 10: 'many')"
    ]
    assert list(Monitor.objects.values_list("name", flat=True)) == ["fine"]
    gatus = "endpoints:\n  - name: odd\n    url: https://127.0.0.1/\n    conditions: 5\n"
    imported = gatus_read(gatus)
    assert imported.skipped[0].startswith("endpoint 'odd': unreadable")
