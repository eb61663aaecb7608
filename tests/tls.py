"""Certificate chains with chosen dates, for the TLS checks' tests.

openssl's command line cannot back-date a certificate, and an intermediate that expires
before the server's own certificate, or a server certificate that expired yesterday,
is exactly what these tests need; the ``cryptography`` package builds them.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

Key = ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class Chain:
    ca_pem: str  # the root, to trust
    chain_file: Path  # leaf + intermediate, for the server
    key_file: Path
    leaf_not_after: dt.datetime
    intermediate_not_after: dt.datetime


def _key() -> Key:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(
    *,
    subject: str,
    key: Key,
    issuer: str,
    issuer_key: Key,
    not_before: dt.datetime,
    not_after: dt.datetime,
    ca: bool,
    hosts: tuple[str, ...] = (),
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
        builder = builder.add_extension(usage, critical=True)
    if hosts:
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def make_chain(
    directory: Path,
    *,
    leaf_days: float,
    intermediate_days: float,
    hosts: tuple[str, ...] = ("localhost", "127.0.0.1"),
    name: str = "chain",
) -> Chain:
    """A root (10 years), an intermediate valid ``intermediate_days`` from now, and a
    server certificate for ``hosts`` valid ``leaf_days`` from now (negative: expired
    that long ago), written for a server; whole seconds, as certificates keep them."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    start = now - dt.timedelta(days=30)
    root_key, intermediate_key, leaf_key = _key(), _key(), _key()
    root = _certificate(
        subject="Test Root CA",
        key=root_key,
        issuer="Test Root CA",
        issuer_key=root_key,
        not_before=start,
        not_after=now + dt.timedelta(days=3650),
        ca=True,
    )
    intermediate_not_after = now + dt.timedelta(days=intermediate_days)
    intermediate = _certificate(
        subject="Test Intermediate CA",
        key=intermediate_key,
        issuer="Test Root CA",
        issuer_key=root_key,
        not_before=start,
        not_after=intermediate_not_after,
        ca=True,
    )
    leaf_not_after = now + dt.timedelta(days=leaf_days)
    leaf = _certificate(
        subject=hosts[0],
        key=leaf_key,
        issuer="Test Intermediate CA",
        issuer_key=intermediate_key,
        not_before=start,
        not_after=leaf_not_after,
        ca=False,
        hosts=hosts,
    )
    pem = serialization.Encoding.PEM
    chain_file = directory / f"{name}.pem"
    chain_file.write_bytes(leaf.public_bytes(pem) + intermediate.public_bytes(pem))
    key_file = directory / f"{name}.key"
    key_file.write_bytes(
        leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return Chain(
        root.public_bytes(pem).decode(),
        chain_file,
        key_file,
        leaf_not_after,
        intermediate_not_after,
    )
