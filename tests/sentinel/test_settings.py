from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from core.reachability import OUTAGES_KEY, redact_url
from sentinel.env import Env

ROOT = Path(__file__).resolve().parents[2]


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run manage.py in a fresh process, as an operator would."""
    environment = {**os.environ, **env}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("raw", "value"), [("true", True), ("No", False), ("1", True), ("off", False)]
)
def test_booleans_read_the_usual_words(raw, value):
    assert Env({"FLAG": raw}).bool("FLAG", not value) is value


def test_a_mistyped_boolean_is_an_error_not_a_silent_false():
    with pytest.raises(ImproperlyConfigured, match="FLAG='ture' is not a boolean"):
        Env({"FLAG": "ture"}).bool("FLAG", False)


def test_integers_are_checked_for_form_and_range():
    env = Env({"N": "abc", "M": "500"})
    with pytest.raises(ImproperlyConfigured, match="not a whole number"):
        env.int("N", 1, minimum=0, maximum=10)
    with pytest.raises(ImproperlyConfigured, match="between 0 and 100"):
        env.int("M", 1, minimum=0, maximum=100)
    assert env.int("MISSING", 7, minimum=0, maximum=10) == 7


def test_secrets_are_read_from_name_file(tmp_path):
    secret = tmp_path / "key"
    secret.write_text("s3cret-value\n")

    assert Env({"SECRET_KEY_FILE": str(secret)}).str("SECRET_KEY", "default") == "s3cret-value"
    with pytest.raises(ImproperlyConfigured, match="cannot be read"):
        Env({"SECRET_KEY_FILE": str(tmp_path / "missing")}).str("SECRET_KEY", "default")
    with pytest.raises(ImproperlyConfigured, match="not both"):
        Env({"SECRET_KEY": "a", "SECRET_KEY_FILE": str(secret)}).str("SECRET_KEY", "d")


def test_urls_are_shown_without_their_password():
    assert redact_url("amqp://guest:guest@127.0.0.1:5672//") == "amqp://guest:***@127.0.0.1:5672//"
    assert redact_url("redis://:pw@127.0.0.1:6379/0") == "redis://***@127.0.0.1:6379/0"
    assert redact_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


def test_production_settings_pass_check_deploy():
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="status.example.test",
    )

    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_the_development_secret_key():
    result = manage("check", DEBUG="false", ALLOWED_HOSTS="status.example.test")

    assert result.returncode != 0
    assert "sentinel.E001" in result.stderr


def test_a_mistyped_setting_is_one_clear_line():
    result = manage("check", DEBUG="ture")

    assert result.returncode == 2
    assert result.stderr.strip() == (
        "Configuration error: DEBUG='ture' is not a boolean; "
        "use one of true/false, yes/no, on/off, 1/0."
    )


def test_an_invalid_allowed_network_is_a_system_check_error():
    result = manage("check", SENTINEL_ALLOWED_NETWORKS="10.0.0.0/8,not-a-net")

    assert result.returncode != 0
    assert "sentinel.E002" in result.stderr


def test_an_unknown_site_time_zone_is_a_system_check_error():
    result = manage("check", SENTINEL_TIME_ZONE="Europe/Atlantis")

    assert result.returncode != 0
    assert "sentinel.E004" in result.stderr and "'Europe/Atlantis' is not a time zone" in (
        result.stderr
    )
    assert manage("check", SENTINEL_TIME_ZONE="America/New_York").returncode == 0


def test_an_unreachable_database_is_one_line_naming_it_without_the_password(redis_client):
    result = manage("migrate", DATABASE_URL="mysql://root:hunter2@127.0.0.1:1/sentinel")

    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("MySQL is unreachable at mysql://root:***@127.0.0.1:1/sentinel")
    assert "hunter2" not in result.stderr
    assert "start MariaDB/MySQL" in lines[0]
    assert redis_client.hgetall(OUTAGES_KEY) == {b"database": b"1"}  # /metrics counts it


def test_a_missing_database_says_how_to_create_it(redis_client):
    result = manage("migrate", DATABASE_URL="mysql://root:@127.0.0.1:3306/sentinel_absent_db")

    assert result.returncode == 3
    assert "ensure_database" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert redis_client.hgetall(OUTAGES_KEY) == {}  # not an outage


@pytest.mark.parametrize(
    ("variable", "url", "name"),
    [
        (
            "REDIS_URL",
            "redis://:pw@127.0.0.1:1/0",
            "Redis is unreachable at redis://***@127.0.0.1:1/0",
        ),
        (
            "CELERY_BROKER_URL",
            "amqp://guest:pw@127.0.0.1:1//",
            "RabbitMQ is unreachable at amqp://guest:***@127.0.0.1:1//",
        ),
    ],
)
def test_preflight_names_an_unreachable_service(variable, url, name):
    result = manage("preflight", **{variable: url})

    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert name in lines[0]
    assert "pw" not in lines[0].replace("***", "")


def without_database_settings(**env: str) -> dict[str, str]:
    """This process's environment without DATABASE_URL and friends, plus ``env``."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith("DATABASE_")}
    return {**kept, **env}


DATABASE_OF_A_PROCESS = """
import django
django.setup()
from django.conf import settings
from django.db import connection
from monitors.models import Monitor
print(connection.vendor, settings.DATABASES["default"].get("NAME", ""))
try:
    Monitor.objects.count()
except Exception as exc:
    print(type(exc).__name__, exc)
"""


def database_of_a_process(env: dict[str, str]) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", DATABASE_OF_A_PROCESS],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "sentinel.settings"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


@pytest.mark.parametrize("unset", [{}, {"DATABASE_URL": ""}], ids=["unset", "empty"])
def test_a_probe_worker_without_database_url_has_no_database(unset):
    lines = database_of_a_process(without_database_settings(SENTINEL_ROLE="probe", **unset))

    assert lines[0].split() == ["none"]
    assert lines[1] == (
        "ImproperlyConfigured This process has no database (SENTINEL_ROLE=probe without "
        "DATABASE_URL): a probe worker needs only RabbitMQ and the Redis buffer. Set "
        "DATABASE_URL to give it one."
    )


def test_other_processes_without_database_url_keep_the_development_database():
    lines = database_of_a_process(without_database_settings())

    assert lines[0] == "mysql sentinel"  # and where it is not running, one line says so


def test_a_probe_worker_given_a_database_url_uses_it():
    url = "mysql://root:@127.0.0.1:3306/sentinel_elsewhere"
    lines = database_of_a_process(
        without_database_settings(SENTINEL_ROLE="probe", DATABASE_URL=url)
    )

    assert lines[0] == "mysql sentinel_elsewhere"


def test_a_command_that_needs_the_database_names_the_settings_on_a_probe_worker():
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate"],
        cwd=ROOT,
        env=without_database_settings(SENTINEL_ROLE="probe"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 2
    assert result.stderr.strip().startswith(
        "Configuration error: This process has no database (SENTINEL_ROLE=probe without "
        "DATABASE_URL)"
    )


def test_an_unknown_role_is_one_clear_line():
    result = manage("check", SENTINEL_ROLE="probes")

    assert result.returncode == 2
    assert result.stderr.strip() == (
        "Configuration error: SENTINEL_ROLE='probes' is not one of all, probe."
    )


@pytest.mark.parametrize(
    ("variable", "value", "line"),
    [
        (
            "SENTINEL_REGIONS",
            "local,EU West",
            "Configuration error: SENTINEL_REGIONS: 'EU West' is not a region name: 1 to 32 "
            "lower-case letters, digits and dashes, starting and ending with a letter or digit.",
        ),
        (
            "SENTINEL_REGION",
            "-eu",
            "Configuration error: SENTINEL_REGION: '-eu' is not a region name: 1 to 32 "
            "lower-case letters, digits and dashes, starting and ending with a letter or digit.",
        ),
        (
            "SENTINEL_REGIONS",
            "eu,eu",
            "Configuration error: SENTINEL_REGIONS must name at least one region, each once.",
        ),
        (
            "SENTINEL_SOURCE_ADDRESS",
            "127.0.0.300",
            "Configuration error: SENTINEL_SOURCE_ADDRESS='127.0.0.300' is not an IP address.",
        ),
    ],
)
def test_bad_region_settings_are_one_clear_line_naming_the_variable(variable, value, line):
    result = manage("check", **{variable: value})

    assert result.returncode == 2
    assert result.stderr.strip() == line


def test_an_amqps_broker_is_verified_by_chain_and_host_name_with_an_optional_private_ca():
    code = "from django.conf import settings; print(sorted(settings.CELERY_BROKER_USE_SSL.items()))"
    result = manage(
        "shell",
        "-c",
        code,
        CELERY_BROKER_URL="amqps://region:secret@broker.example.test:5671/",
        SENTINEL_BROKER_CA_FILE="/etc/sentinel/broker-ca.pem",
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == (
        "[('ca_certs', '/etc/sentinel/broker-ca.pem'), "
        "('cert_reqs', <VerifyMode.CERT_REQUIRED: 2>), "
        "('server_hostname', 'broker.example.test')]"
    )
