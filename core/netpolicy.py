"""The outgoing-network policy: which addresses a worker may connect to.

Users type URLs; without a policy a monitor or a notification channel is a way to make
our workers fetch ``http://169.254.169.254/`` (cloud metadata) or an admin page on the
private network and report back what they saw. ``TargetPolicy`` decides; the probe
engine enforces it in its aiohttp connector (``monitors.probes.guard``) and the
notification senders in name resolution and ``connect`` (``alerting.netguard``), so
checks and notifications can never disagree about what a worker may reach.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Listed for the reader and for the tests; ``is_global`` below catches the rest of
# IANA's special-purpose registry (documentation, benchmarking, reserved ranges).
BLOCKED_NETWORKS: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(cidr)
    for cidr in (
        "0.0.0.0/8",  # "this network", incl. the unspecified address
        "10.0.0.0/8",  # RFC 1918
        "100.64.0.0/10",  # CGNAT (RFC 6598)
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local, incl. 169.254.169.254 (cloud metadata)
        "172.16.0.0/12",  # RFC 1918
        "192.0.0.0/24",  # IETF protocol assignments
        "192.168.0.0/16",  # RFC 1918
        "198.18.0.0/15",  # benchmarking
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, incl. broadcast
        "::/128",  # unspecified
        "::1/128",  # loopback
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # old site-local
        "ff00::/8",  # multicast
    )
)


class BlockedTarget(OSError):
    """The target resolves to an address the guard refuses.

    An ``OSError`` so that aiohttp passes it through its connector like any other
    resolution failure (wrapped in ``ClientConnectorDNSError``), before connecting.
    """


@dataclass(frozen=True)
class TargetPolicy:
    """Which addresses checks may connect to."""

    allow_private: bool = False
    allowed_networks: tuple[IPNetwork, ...] = field(default_factory=tuple)
    # The address checks connect from ("": the system's choice): a region's own address
    # (SENTINEL_SOURCE_ADDRESS).
    source_address: str = ""

    @classmethod
    def from_settings(cls) -> TargetPolicy:
        from django.conf import settings

        return cls(
            allow_private=settings.SENTINEL_ALLOW_PRIVATE_TARGETS,
            allowed_networks=parse_networks(settings.SENTINEL_ALLOWED_NETWORKS),
            source_address=settings.SENTINEL_SOURCE_ADDRESS,
        )

    def local_addr(self, address: str = "") -> tuple[str, int] | None:
        """``(source address, any port)`` for a connection to ``address``, or None where
        the system chooses: no source address, or one of the other family."""
        if not self.source_address or (":" in address) != (":" in self.source_address):
            return None
        return (self.source_address, 0)

    def refusal(self, address: str) -> str | None:
        """Why ``address`` may not be connected to, or None if it may."""
        if self.allow_private:
            return None
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        # ::ffff:10.0.0.5 and 64:ff9b::a00:5 reach the IPv4 address inside them.
        embedded = getattr(ip, "ipv4_mapped", None) or _nat64(ip)
        if embedded is not None:
            ip = embedded
        if any(ip in net for net in self.allowed_networks):
            return None
        if any(ip in net for net in BLOCKED_NETWORKS) or not ip.is_global or ip.is_multicast:
            return f"{ip} is a private or reserved address"
        return None

    def check(self, host: str, addresses: Iterable[str]) -> None:
        """Raise ``BlockedTarget`` unless every address of ``host`` is allowed.

        Every address, not just the first: the connector falls back to the next
        address when one fails, so an attacker could list a public address first.
        """
        for address in addresses:
            reason = self.refusal(address)
            if reason:
                raise BlockedTarget(f"refused {host}: {reason}")


def _nat64(ip: IPAddress) -> ipaddress.IPv4Address | None:
    if isinstance(ip, ipaddress.IPv6Address) and ip in ipaddress.ip_network("64:ff9b::/96"):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def parse_networks(entries: Sequence[str]) -> tuple[IPNetwork, ...]:
    # Malformed entries are reported by the sentinel.E002 system check.
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries)
