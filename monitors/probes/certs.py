"""Certificates of a TLS connection: trust per monitor, and the chain's expiry.

A chain stops verifying the day its first certificate expires, which is not always the
server's own: an intermediate can expire first. So the expiry a check records is the
earliest ``notAfter`` of the chain the handshake verified (or, when verification failed
or is off, of the chain the server sent), with the subject of the certificate that sets
it. The chains come from ``SSLObject.get_verified_chain`` / ``get_unverified_chain``
(public from Python 3.13; on 3.11 the same methods of the object's ``_sslobj``).
"""

from __future__ import annotations

import _ssl
import datetime as dt
import functools
import ssl
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ChainExpiry:
    expires_at: dt.datetime  # the earliest notAfter of the chain, UTC
    subject: str  # e.g. "CN=Example Intermediate CA, O=Example"
    leaf: bool  # whether that certificate is the server's own


@functools.cache
def default_ssl_context() -> ssl.SSLContext:
    """The system's CA trust, loaded once per process: loading it takes ~100 ms,
    which per batch of 100 checks would be a millisecond of CPU per check."""
    return ssl.create_default_context()


@functools.lru_cache(maxsize=256)
def monitor_ssl_context(*, verify: bool, ca_bundle: str) -> ssl.SSLContext:
    """The TLS trust of a monitor: the system's CAs plus ``ca_bundle`` (PEM text, may be
    empty), or no verification at all when ``verify`` is false (the certificate is
    still read, for its expiry). Cached per (verify, bundle): building one loads the
    system's CAs. Raises ``ssl.SSLError`` for a bundle that is not PEM certificates."""
    if verify and not ca_bundle:
        return default_ssl_context()
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif ca_bundle:
        context.load_verify_locations(cadata=ca_bundle)
    return context


def unverified_ssl_context() -> ssl.SSLContext:
    """For reading the chain of a server whose certificate did not verify."""
    return monitor_ssl_context(verify=False, ca_bundle="")


def chain_expiry(ssl_object: Any) -> ChainExpiry | None:
    """The earliest expiry of the chain of ``ssl_object`` (an ``ssl.SSLObject`` or
    ``SSLSocket`` after its handshake): the verified chain when there is one, else the
    chain the server sent. None when there is no TLS or no certificate."""
    if ssl_object is None:
        return None
    chain = _chain(ssl_object, "get_verified_chain") or _chain(ssl_object, "get_unverified_chain")
    found = []
    for index, certificate in enumerate(chain):
        facts = _expiry_and_subject(certificate)
        if facts is not None:
            found.append(ChainExpiry(facts[0], facts[1], index == 0))
    return min(found, key=lambda e: (e.expires_at, not e.leaf)) if found else None


# Per certificate (by its DER bytes), not per check: the intermediates and roots of
# thousands of monitors are the same few, and decoding one (strptime included) cost
# most of a TLS check's extra time.
_FACTS: dict[bytes, tuple[dt.datetime, str] | None] = {}
_FACTS_MAX = 4096


def _expiry_and_subject(certificate: Any) -> tuple[dt.datetime, str] | None:
    der = certificate.public_bytes(_ssl.ENCODING_DER)
    if der in _FACTS:
        return _FACTS[der]
    info = certificate.get_info()
    facts = None
    if "notAfter" in info:
        expires = dt.datetime.fromtimestamp(ssl.cert_time_to_seconds(info["notAfter"]), dt.UTC)
        facts = (expires, subject_text(info.get("subject", ())))
    if len(_FACTS) >= _FACTS_MAX:
        _FACTS.clear()
    _FACTS[der] = facts
    return facts


def _chain(ssl_object: Any, method: str) -> list[Any]:
    for owner in (ssl_object, getattr(ssl_object, "_sslobj", None)):
        get = getattr(owner, method, None)
        if get is not None:
            try:
                return list(get() or [])
            except ValueError:  # no handshake yet, or no peer certificate
                return []
    return []


def subject_text(subject: Any) -> str:
    """A certificate subject as ``getpeercert`` gives it, as ``CN=…, O=…`` text."""
    parts = [f"{name}={value}" for rdn in subject for name, value in rdn]
    short = {"commonName": "CN", "organizationName": "O", "countryName": "C"}
    for long, abbreviation in short.items():
        parts = [p.replace(f"{long}=", f"{abbreviation}=", 1) for p in parts]
    return ", ".join(parts)
