from __future__ import annotations

import ipaddress
import os
import ssl
from collections.abc import Iterator

import pytest
from django.conf import settings
from kombu import Connection

from monitors.probes import TargetPolicy
from sentinel.celery import app
from tests.dns_server import DnsServer, serve_dns
from tests.targets import Certificates, Target, make_certificates, serve_targets, server_context
from tests.workers import celery_worker


@pytest.fixture(scope="session")
def certificates(tmp_path_factory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def target(certificates) -> Iterator[Target]:
    """Local HTTP and HTTPS (certificate from the test CA) servers on 127.0.0.1."""
    with serve_targets(server_context(certificates.cert_file, certificates.key_file)) as t:
        yield t


@pytest.fixture(scope="session")
def self_signed_target(certificates) -> Iterator[Target]:
    with serve_targets(
        server_context(certificates.self_signed_cert, certificates.self_signed_key)
    ) as t:
        yield t


@pytest.fixture(scope="session")
def dns_server() -> Iterator[DnsServer]:
    """A DNS server on 127.0.0.1 answering from a small zone (tests/dns_server.py)."""
    with serve_dns() as server:
        yield server


@pytest.fixture(scope="session")
def client_tls(certificates) -> ssl.SSLContext:
    """The checker's TLS trust for tests: the test CA only."""
    return ssl.create_default_context(cafile=str(certificates.ca_file))


@pytest.fixture
def loopback_policy() -> TargetPolicy:
    return TargetPolicy(
        allowed_networks=(ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
    )


@pytest.fixture(params=["plain", "aiohttp"])
def http_path(request, monkeypatch) -> str:
    """Run a test on both HTTP paths: the lean one for plain GETs (http1.py) and
    aiohttp's, which takes every other check."""
    from monitors.probes import engine

    if request.param == "aiohttp":
        monkeypatch.setattr(engine, "plain_get", lambda spec: False)
    return str(request.param)


START_TIMEOUT_S = 60


@pytest.fixture
def probe_worker(tmp_path, redis_client):
    """A Celery probe worker subprocess whose environment has no DATABASE_URL."""
    with Connection(settings.CELERY_BROKER_URL) as conn:
        app.amqp.queues["probes"].bind(conn.default_channel).purge()
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith("DATABASE_")
    }
    environment.update(
        SENTINEL_ROLE="probe",
        REDIS_URL=settings.REDIS_URL,
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        TELEMETRY_SPOOL_DIR=str(tmp_path / "spool"),
    )
    log = tmp_path / "worker.log"
    with celery_worker(environment=environment, log=log, name="probe-test") as worker:
        yield worker, log
