from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from alerting.models import AlertRule, MaintenanceWindow, MonitorAlerting, NotificationChannel
from configfiles.apply import config_apply
from configfiles.document import ConfigFileError, dump
from configfiles.export import config_export
from configfiles.models import ConfigApply
from configfiles.scope import scope_for_owner
from monitors.models import Monitor, Tag
from monitors.services import monitor_create
from tests.factories import (
    MaintenanceWindowFactory,
    NotificationChannelFactory,
    UserFactory,
    WebhookChannelFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def populated(user):
    """An owner with a bit of everything a file holds."""
    email = NotificationChannelFactory(owner=user, name="ops mail")
    hook = WebhookChannelFactory(owner=user, name="ops hook")
    api = monitor_create(
        owner=user,
        name="API",
        url="https://127.0.0.1:8443/health",
        interval_seconds=120,
        keyword="ok",
        tags=["prod", "api"],
    )
    monitor_create(
        owner=user, name="DB port", kind="tcp", url="tcp://127.0.0.1:3306", enabled=False
    )
    monitor_create(
        owner=user,
        name="nightly backup",
        kind="heartbeat",
        url="",
        heartbeat_slug="backup",
        heartbeat_cron="0 3 * * *",
        heartbeat_tz="Europe/Berlin",
        heartbeat_grace_seconds=1800,
    )
    down = AlertRule.objects.create(monitor=api, kind="down", threshold=3)
    down.channels.set([email, hook])
    AlertRule.objects.create(monitor=api, kind="latency", threshold=800, consecutive_checks=3)
    MonitorAlerting.objects.create(monitor=api, reminder_minutes=30)
    window = MaintenanceWindowFactory(
        owner=user,
        name="patch night",
        starts_at=dt.datetime(2026, 12, 6, 1, 0, tzinfo=dt.UTC),
        ends_at=dt.datetime(2026, 12, 6, 2, 0, tzinfo=dt.UTC),
        time_zone="Europe/Berlin",
        repeat="weekly",
    )
    window.monitors.set([api])
    window.tags.set([Tag.objects.get(name="prod")])
    return user


def export_text(owner, syntax="yaml"):
    return dump(config_export(scope=scope_for_owner(owner)), syntax=syntax)


def test_it_exports_every_kind_of_object_without_secrets(populated):
    text = export_text(populated)
    assert "name: API" in text and "name: DB port" in text
    assert "enabled: false" in text
    assert "heartbeat_cron: 0 3 * * *" in text and "heartbeat_slug: backup" in text
    assert "kind: latency" in text and "consecutive_checks: 3" in text
    assert "reminder_minutes: 30" in text
    assert "name: patch night" in text and "time_zone: Europe/Berlin" in text
    assert "starts_at: '2026-12-06T02:00:00+01:00'" in text
    assert "s3cret" not in text
    assert "env: SENTINEL_SECRET_OPS_HOOK_SECRET" in text


@pytest.mark.parametrize("syntax", ["yaml", "json"])
def test_it_gives_the_same_file_after_export_apply_on_an_empty_owner_export(
    populated, monkeypatch, syntax
):
    monkeypatch.setenv("SENTINEL_SECRET_OPS_HOOK_SECRET", "from-the-environment")
    text = export_text(populated, syntax)
    empty = UserFactory()
    report = config_apply(scope=scope_for_owner(empty), text=text)
    assert report.changed
    assert export_text(empty, syntax) == text
    hook = NotificationChannel.objects.get(owner=empty, name="ops hook")
    assert hook.config["secret"] == "from-the-environment"
    assert Monitor.objects.get(owner=empty, name="DB port").status == Monitor.Status.PAUSED


def test_it_changes_nothing_when_the_same_file_is_applied_twice(populated, monkeypatch):
    monkeypatch.setenv("SENTINEL_SECRET_OPS_HOOK_SECRET", "x")
    text = export_text(populated)
    other = UserFactory()
    first = config_apply(scope=scope_for_owner(other), text=text)
    second = config_apply(scope=scope_for_owner(other), text=text)
    assert first.changed and not second.changed
    assert second.unchanged == 2 + 3 + 2 + 1  # channels, monitors, rules, window
    assert ConfigApply.objects.filter(owner=other).count() == 1


def test_it_applies_its_own_export_as_no_change(populated):
    report = config_apply(scope=scope_for_owner(populated), text=export_text(populated))
    assert report.changes == []
    # The secret was not in the environment and stays as stored.
    assert NotificationChannel.objects.get(name="ops hook").config["secret"] == "s3cret"


def test_it_updates_what_changed_and_reports_it(populated):
    text = export_text(populated).replace("interval_seconds: 120", "interval_seconds: 300")
    text = text.replace("threshold: 800", "threshold: 900")
    report = config_apply(scope=scope_for_owner(populated), text=text)
    lines = report.lines()
    assert "~ monitor 'API': interval_seconds: 120 -> 300" in lines
    assert any(line.startswith("~ alert rule 'API: latency 900'") for line in lines)
    assert Monitor.objects.get(name="API").interval_seconds == 300
    assert AlertRule.objects.filter(kind="latency", threshold=900).count() == 1


def test_it_keeps_what_the_file_leaves_out_unless_pruning(populated):
    text = export_text(populated)
    # Only the API monitor and what it needs.
    doc = config_export(scope=scope_for_owner(populated))
    doc["monitors"] = [m for m in doc["monitors"] if m["name"] == "API"]
    doc["maintenance_windows"] = []
    doc["channels"] = [c for c in doc["channels"] if c["name"] != "ops hook"]
    doc["monitors"][0]["alert_rules"][0]["channels"] = ["ops mail"]
    small = dump(doc, syntax="yaml")
    kept = config_apply(scope=scope_for_owner(populated), text=small)
    assert Monitor.objects.filter(owner=populated).count() == 3
    assert "monitor 'DB port'" in kept.kept
    pruned = config_apply(scope=scope_for_owner(populated), text=small, prune=True)
    assert "- monitor 'DB port'" in pruned.lines()
    assert "- channel 'ops hook'" in pruned.lines()
    assert "- maintenance window 'patch night'" in pruned.lines()
    assert set(Monitor.objects.filter(owner=populated).values_list("name", flat=True)) == {"API"}
    assert not MaintenanceWindow.objects.filter(owner=populated).exists()
    assert text != export_text(populated)


def test_it_changes_nothing_on_a_dry_run(populated):
    before = export_text(populated)
    doc = config_export(scope=scope_for_owner(populated))
    doc["monitors"][0]["interval_seconds"] = 600
    doc["monitors"].append({"name": "new one", "kind": "http", "url": "https://127.0.0.1/x"})
    report = config_apply(
        scope=scope_for_owner(populated), text=dump(doc, syntax="yaml"), dry_run=True, prune=True
    )
    assert "+ monitor 'new one'" in report.lines()
    assert any("interval_seconds: 120 -> 600" in line for line in report.lines())
    assert "would be" in report.summary()
    assert export_text(populated) == before
    assert not ConfigApply.objects.exists()


BAD = """\
version: 1
channels:
  - name: ops
    kind: email
    config:
      address: not-an-address
monitors:
  - name: fine
    url: https://127.0.0.1/fine
  - name: broken
    url: https://127.0.0.1/broken
    interval_seconds: 5
    colour: blue
    intervall_seconds: 60
"""


def test_it_refuses_a_bad_file_with_line_numbers_and_changes_nothing(user):
    with pytest.raises(ConfigFileError) as caught:
        config_apply(scope=scope_for_owner(user), text=BAD)
    text = str(caught.value)
    assert 'line 5: channels[0] "ops".config: Enter a valid email address.' in text
    assert 'line 12: monitors[1] "broken".interval_seconds:' in text
    assert 'line 13: monitors[1] "broken".colour: unknown field' in text
    assert (
        'line 14: monitors[1] "broken".intervall_seconds: unknown field; '
        "did you mean 'interval_seconds'?" in text
    )
    assert not Monitor.objects.exists()
    assert not NotificationChannel.objects.exists()


def test_it_names_the_line_of_a_syntax_error(user):
    with pytest.raises(ConfigFileError) as caught:
        config_apply(scope=scope_for_owner(user), text="version: 1\nmonitors:\n  - name: [x\n")
    assert caught.value.problems[0].line in (3, 4)


def test_it_refuses_a_secret_from_an_unset_variable_when_none_is_stored(user, monkeypatch):
    monkeypatch.delenv("NOPE_SECRET", raising=False)
    text = (
        "version: 1\nchannels:\n  - name: hook\n    kind: webhook\n    config:\n"
        "      url: https://127.0.0.1/hook\n      secret: {env: NOPE_SECRET}\n"
    )
    with pytest.raises(ConfigFileError, match=r"line 7: .*NOPE_SECRET is not set"):
        config_apply(scope=scope_for_owner(user), text=text)


def test_it_sets_a_secret_the_file_gives(populated):
    doc = config_export(scope=scope_for_owner(populated))
    hook = next(c for c in doc["channels"] if c["name"] == "ops hook")
    hook["config"]["secret"] = "rotated"
    report = config_apply(scope=scope_for_owner(populated), text=dump(doc, syntax="json"))
    assert "~ channel 'ops hook': config.secret: (secret changed)" in report.lines()
    assert "rotated" not in "\n".join(report.lines())
    assert NotificationChannel.objects.get(name="ops hook").config["secret"] == "rotated"


def test_it_refuses_to_export_two_monitors_of_one_name(user):
    monitor_create(owner=user, name="twin", url="https://127.0.0.1/a")
    monitor_create(owner=user, name="twin", url="https://127.0.0.1/b")
    with pytest.raises(ConfigFileError, match="2 are named 'twin'"):
        config_export(scope=scope_for_owner(user))


def test_it_never_touches_another_owners_objects(populated, other_user):
    theirs = monitor_create(owner=other_user, name="API", url="https://127.0.0.1/theirs")
    config_apply(scope=scope_for_owner(populated), text="version: 1\n", prune=True)
    assert not Monitor.objects.filter(owner=populated).exists()
    theirs.refresh_from_db()
    assert theirs.url == "https://127.0.0.1/theirs"


def test_the_commands_export_and_apply_with_a_dry_run(populated, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SENTINEL_SECRET_OPS_HOOK_SECRET", "x")
    path = tmp_path / "sentinel.yaml"
    call_command("config_export", owner=populated.username, output=str(path))
    target = UserFactory()
    call_command("config_apply", str(path), owner=target.username, dry_run=True)
    assert "+ monitor 'API'" in capsys.readouterr().out
    assert not Monitor.objects.filter(owner=target).exists()
    path.write_text(path.read_text().replace("version: 1", "version: 7"))
    with pytest.raises(CommandError, match="nothing was changed:\nline 1: version: must be 1"):
        call_command("config_apply", str(path), owner=target.username)


def test_it_exports_credential_headers_as_references(user, monkeypatch):
    monitor_create(
        owner=user,
        name="private API",
        url="https://127.0.0.1/p",
        headers={"Authorization": "Bearer t0ken", "X-Api-Key": "k3y", "Accept": "text/plain"},
    )
    text = export_text(user)
    assert "t0ken" not in text and "k3y" not in text
    assert "env: SENTINEL_SECRET_PRIVATE_API_HEADER_AUTHORIZATION" in text
    assert "env: SENTINEL_SECRET_PRIVATE_API_HEADER_X_API_KEY" in text
    assert "Accept: text/plain" in text
    # Applied where the variables are unset: the stored values stay.
    assert config_apply(scope=scope_for_owner(user), text=text).changes == []
    # Elsewhere they must be set, and their values are stored.
    other = UserFactory()
    with pytest.raises(ConfigFileError, match=r"headers.Authorization: the environment variable"):
        config_apply(scope=scope_for_owner(other), text=text)
    monkeypatch.setenv("SENTINEL_SECRET_PRIVATE_API_HEADER_AUTHORIZATION", "Bearer other")
    monkeypatch.setenv("SENTINEL_SECRET_PRIVATE_API_HEADER_X_API_KEY", "other key")
    config_apply(scope=scope_for_owner(other), text=text)
    copied = Monitor.objects.get(owner=other)
    assert copied.headers == {
        "Authorization": "Bearer other",
        "X-Api-Key": "other key",
        "Accept": "text/plain",
    }
    assert export_text(other) == text


def test_it_refuses_a_file_whose_aliases_explode(user):
    # "Billion laughs": nine levels of ten aliases stand for 10**9 items.
    lines = ["version: 1", "a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 10):
        ref = f"*a{level - 1}"
        lines.append(f"a{level}: &a{level} [{', '.join([ref] * 10)}]")
    with pytest.raises(ConfigFileError, match="more than 200000 keys and items"):
        config_apply(scope=scope_for_owner(user), text="\n".join(lines) + "\n")


def test_it_refuses_a_duplicate_key_with_its_line(user):
    text = "version: 1\nmonitors:\n  - name: a\n    url: https://127.0.0.1/\n    url: https://127.0.0.1/b\n"
    with pytest.raises(ConfigFileError) as caught:
        config_apply(scope=scope_for_owner(user), text=text)
    assert caught.value.problems[0].line == 5


def test_it_refuses_a_file_nested_too_deeply(user):
    text = "version: 1\nx: " + "[" * 5000 + "]" * 5000 + "\n"
    with pytest.raises(ConfigFileError, match="nested too deeply"):
        config_apply(scope=scope_for_owner(user), text=text)


def test_it_sets_and_checks_the_reminder_interval(populated):
    text = export_text(populated).replace("reminder_minutes: 30", "reminder_minutes: 60")
    report = config_apply(scope=scope_for_owner(populated), text=text)
    assert "~ monitor 'API': reminder_minutes: 30 -> 60" in report.lines()
    assert MonitorAlerting.objects.get(monitor__name="API").reminder_minutes == 60
    bad = text.replace("reminder_minutes: 60", "reminder_minutes: 99999")
    line = bad.splitlines().index("  reminder_minutes: 99999") + 1
    with pytest.raises(
        ConfigFileError, match=rf"line {line}: .*reminder_minutes: Ensure this value"
    ):
        config_apply(scope=scope_for_owner(populated), text=bad)
    assert MonitorAlerting.objects.get(monitor__name="API").reminder_minutes == 60


def test_a_heartbeat_written_by_hand_applies_twice_as_no_change(user):
    # A save stores a heartbeat with confirm_failures 1 and an empty slug as none; the
    # apply compares the file's values prepared the same way.
    text = (
        "version: 1\nmonitors:\n  - name: backup\n    kind: heartbeat\n    url: ''\n"
        "    heartbeat_slug: ''\n    heartbeat_period_seconds: 3600\n"
    )
    first = config_apply(scope=scope_for_owner(user), text=text)
    second = config_apply(scope=scope_for_owner(user), text=text)
    assert first.changed and not second.changed
    assert Monitor.objects.get(owner=user).confirm_failures == 1
