"""Certificates and virtual hosts, against local TLS servers with chains of chosen
dates: a private CA a monitor trusts, verification turned off, an intermediate that
expires before the server's certificate, an expired certificate, and a virtual host
checked on a given address (HTTP Host and TLS server name kept)."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
from collections.abc import Iterator

import pytest

from core.netpolicy import TargetPolicy
from monitors.probes import ProbeSpec, check_batch
from telemetry.records import CheckResult, FailureKind
from tests.targets import Target, serve_targets, server_context
from tests.tls import Chain, make_chain


@pytest.fixture(scope="module")
def chains(tmp_path_factory) -> dict[str, Chain]:
    directory = tmp_path_factory.mktemp("chains")
    return {
        # The intermediate stops the chain verifying in 10 days, the server's in 60.
        "intermediate_first": make_chain(
            directory, leaf_days=60, intermediate_days=10, name="intermediate"
        ),
        "expired": make_chain(directory, leaf_days=-2, intermediate_days=300, name="expired"),
        "vhost": make_chain(
            directory,
            leaf_days=90,
            intermediate_days=300,
            hosts=("vhost.example.test",),
            name="vhost",
        ),
    }


def served(chain: Chain) -> Iterator[Target]:
    with serve_targets(server_context(chain.chain_file, chain.key_file)) as target:
        yield target


@pytest.fixture(scope="module")
def intermediate_first(chains) -> Iterator[Target]:
    yield from served(chains["intermediate_first"])


@pytest.fixture(scope="module")
def expired(chains) -> Iterator[Target]:
    yield from served(chains["expired"])


@pytest.fixture(scope="module")
def vhost(chains) -> Iterator[Target]:
    yield from served(chains["vhost"])


def run(spec: ProbeSpec, *, policy: TargetPolicy) -> CheckResult:
    """One check with the system's trust (no test CA), as a monitor gets it."""
    now = dt.datetime.now(dt.UTC)
    return asyncio.run(check_batch([(spec, now)], policy=policy))[0]


def https(target: Target, path: str = "/ok", **fields) -> ProbeSpec:
    return ProbeSpec(monitor_id=1, kind="http", url=target.tls_url(path), **fields)


def tls(target: Target, **fields) -> ProbeSpec:
    return ProbeSpec(monitor_id=1, kind="tls", url=f"tls://localhost:{target.tls_port}", **fields)


FORMS = {
    "https": https,
    "https-keyword": lambda target, **f: https(target, keyword="operational", **f),
    "tls": tls,
}


@pytest.fixture(params=sorted(FORMS))
def check_of(request, http_path):
    """Each test on each form: https and an https keyword check on both HTTP paths, and
    tls://."""
    return FORMS[request.param]


def test_a_private_ca_is_refused_until_the_monitor_trusts_it(
    check_of, intermediate_first, chains, loopback_policy
):
    ca = chains["intermediate_first"].ca_pem

    refused = run(check_of(intermediate_first), policy=loopback_policy)
    trusted = run(check_of(intermediate_first, tls_ca_bundle=ca), policy=loopback_policy)

    assert refused.failure == FailureKind.TLS
    assert trusted.ok, trusted.error


def test_verification_turned_off_accepts_the_certificate_and_still_records_its_expiry(
    check_of, intermediate_first, chains, loopback_policy
):
    result = run(check_of(intermediate_first, tls_verify=False), policy=loopback_policy)

    assert result.ok, result.error
    assert result.tls_expires_at == chains["intermediate_first"].intermediate_not_after


def test_the_expiry_is_the_chains_earliest_with_the_certificate_that_sets_it(
    check_of, intermediate_first, chains, loopback_policy
):
    chain = chains["intermediate_first"]

    result = run(check_of(intermediate_first, tls_ca_bundle=chain.ca_pem), policy=loopback_policy)

    assert result.ok, result.error
    assert result.tls_expires_at == chain.intermediate_not_after < chain.leaf_not_after
    assert "Test Intermediate CA" in result.tls_expiring_subject


def test_an_expired_certificate_is_down_says_so_and_its_date_is_recorded(
    check_of, expired, chains, loopback_policy
):
    chain = chains["expired"]

    result = run(check_of(expired, tls_ca_bundle=chain.ca_pem), policy=loopback_policy)

    assert result.failure == FailureKind.TLS
    assert result.tls_expires_at == chain.leaf_not_after
    assert f"expired on {chain.leaf_not_after:%Y-%m-%d %H:%M} UTC" in result.error


VHOST_PATHS = ("plain", "aiohttp")


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_virtual_host_is_checked_on_the_address_given(
    scheme, http_path, vhost, chains, loopback_policy
):
    port = vhost.port if scheme == "http" else vhost.tls_port
    spec = ProbeSpec(
        monitor_id=1,
        kind="http",
        url=f"{scheme}://vhost.example.test:{port}/vhost/vhost.example.test",
        connect_to="127.0.0.1",
        tls_ca_bundle=chains["vhost"].ca_pem if scheme == "https" else "",
    )

    result = run(spec, policy=loopback_policy)

    # 200 only when the server saw Host: vhost.example.test; over TLS the certificate
    # (for vhost.example.test only) verified against the name sent, not the address.
    assert result.ok, result.error
    assert result.status_code == 200
    assert result.dns_ms is None  # nothing was looked up


def test_the_tls_kind_sends_the_host_name_on_the_address_given(vhost, chains, loopback_policy):
    spec = ProbeSpec(
        monitor_id=1,
        kind="tls",
        url=f"tls://vhost.example.test:{vhost.tls_port}",
        connect_to="127.0.0.1",
        tls_ca_bundle=chains["vhost"].ca_pem,
    )

    result = run(spec, policy=loopback_policy)

    assert result.ok, result.error


@pytest.mark.parametrize("address", ["169.254.169.254", "10.0.0.5", "::ffff:192.168.0.1"])
@pytest.mark.parametrize("kind", ["http", "https", "tls"])
def test_the_guard_judges_the_address_connected_to(kind, address, http_path):
    # No network is allowed here: the refusal must come before any connection.
    closed = TargetPolicy(allowed_networks=(ipaddress.ip_network("127.0.0.0/8"),))
    url = {
        "http": "http://public.example.test/",
        "https": "https://public.example.test/",
        "tls": "tls://public.example.test:443",
    }[kind]
    spec = ProbeSpec(
        monitor_id=1, kind="tls" if kind == "tls" else "http", url=url, connect_to=address
    )

    result = run(spec, policy=closed)

    assert result.failure == FailureKind.BLOCKED
    assert result.connect_ms is None


def test_an_internationalised_host_name_is_checked_on_the_address_given(
    http_path, vhost, loopback_policy
):
    spec = ProbeSpec(
        monitor_id=1,
        kind="http",
        url=f"http://bücher.example:{vhost.port}/vhost/xn--bcher-kva.example",
        connect_to="127.0.0.1",
    )

    result = run(spec, policy=loopback_policy)

    assert result.ok, result.error


def test_a_refused_certificate_after_a_redirect_is_read_from_that_hop(
    http_path, target, self_signed_target, loopback_policy
):
    landing = self_signed_target.tls_url("/ok")
    spec = ProbeSpec(monitor_id=1, kind="http", url=target.url(f"/redirect?to={landing}"))

    result = run(spec, policy=loopback_policy)

    assert result.failure == FailureKind.TLS
    assert result.tls_expires_at is not None  # the self-signed hop's, not the first URL's
    assert result.tls_expires_at - dt.datetime.now(dt.UTC) < dt.timedelta(days=3)
    assert "expired" not in result.error  # refused as self-signed, not as expired
