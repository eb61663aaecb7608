"""The deployment files cannot run here (no Docker engine), so check what can be
checked: they parse, and they say the same things as the Makefile and settings."""

from __future__ import annotations

from pathlib import Path

import yaml
from django.conf import settings

ROOT = Path(__file__).resolve().parents[1]


def load(name: str) -> dict:
    return yaml.safe_load((ROOT / name).read_text())


def test_compose_has_healthchecked_services_and_app_profiles():
    compose = load("compose.yaml")
    services = compose["services"]

    health = {
        name: " ".join(services[name]["healthcheck"]["test"])
        for name in ("mysql", "rabbitmq", "redis")
    }
    assert "mysqladmin ping" in health["mysql"]
    assert "rabbitmq-diagnostics" in health["rabbitmq"] and "ping" in health["rabbitmq"]
    assert "redis-cli ping" in health["redis"]
    assert services["mysql"]["image"] == "mysql:8.0"
    assert services["rabbitmq"]["image"] == "rabbitmq:3-management"
    assert services["redis"]["image"] == "redis:7"
    for app in ("web", "worker", "beat", "flower"):
        assert services[app]["profiles"] == [app]
        assert services[app]["depends_on"] or app == "web"
    for dependency in ("mysql", "rabbitmq", "redis"):
        assert services["worker"]["depends_on"][dependency]["condition"] == "service_healthy"


def test_compose_workers_listen_on_every_queue():
    services = load("compose.yaml")["services"]
    commands = [services[name]["command"] for name in ("worker", "probes")]
    queues = [q for c in commands for q in c[c.index("--queues") + 1].split(",")]
    assert sorted(queues) == sorted(settings.SENTINEL_QUEUES)
    assert services["probes"]["profiles"] == ["worker"]


def test_the_procfile_workers_listen_on_every_queue():
    # The probes have a worker of their own (threads pool); together they cover all.
    workers = [
        line
        for line in (ROOT / "Procfile").read_text().splitlines()
        if " worker " in line and "--queues " in line
    ]
    queues = [q for line in workers for q in line.split("--queues ")[1].split()[0].split(",")]
    assert sorted(queues) == sorted(settings.SENTINEL_QUEUES)


def test_the_dockerfile_installs_the_same_lock_as_make_and_runs_unprivileged():
    dockerfile = (ROOT / "Dockerfile").read_text()
    makefile = (ROOT / "Makefile").read_text()

    assert "-r requirements.lock" in dockerfile and "-r requirements.lock" in makefile
    assert dockerfile.count("FROM ") == 2
    # By uid, which hadolint (DL3066) and Kubernetes' runAsNonRoot can check.
    assert "--uid 10001 sentinel" in dockerfile and "\nUSER 10001" in dockerfile


def test_the_ci_workflow_runs_make_test_against_the_three_services():
    workflow = load(".github/workflows/ci.yaml")
    job = workflow["jobs"]["test"]

    assert set(job["services"]) == {"mysql", "redis", "rabbitmq"}
    assert {"run": "make test"} in job["steps"]
    assert (ROOT / ".ci/run").read_text().strip().endswith("make test")


def test_the_probe_region_profile_runs_a_regions_worker_on_the_broker_alone():
    service = load("compose.yaml")["services"]["probe-region"]
    environment = service["environment"]

    assert service["profiles"] == ["probe-region"]
    assert "depends_on" not in service
    assert environment["DATABASE_URL"] == "" and "REDIS_URL" not in environment
    assert environment["SENTINEL_ROLE"] == "probe"
    assert environment["CELERY_BROKER_URL"].startswith("${REGION_BROKER_URL:?")
    command = service["command"]
    assert command[command.index("--queues") + 1] == "probes.${SENTINEL_REGION}"
    assert {"--without-gossip", "--without-mingle", "--without-heartbeat"} <= set(command)
