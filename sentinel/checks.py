"""System checks for settings that Django cannot judge by itself."""

from __future__ import annotations

import ipaddress
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register

from core.time import time_zone
from monitors.probes.ping import icmp_unavailable

MIN_SECRET_KEY_LENGTH = 50


@register()
def check_secret_key(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """Production must not run with the development key or a short one."""
    if settings.DEBUG:
        return []
    key = settings.SECRET_KEY
    if key == settings.INSECURE_DEV_SECRET_KEY or len(key) < MIN_SECRET_KEY_LENGTH:
        return [
            Error(
                "SECRET_KEY is the development default or shorter than "
                f"{MIN_SECRET_KEY_LENGTH} characters while DEBUG is false.",
                hint="Set SECRET_KEY (or SECRET_KEY_FILE) to a long random value, e.g. the "
                "output of 'python -c \"import secrets; print(secrets.token_urlsafe(64))\"'.",
                id="sentinel.E001",
            )
        ]
    return []


@register()
def check_allowed_networks(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """Every SENTINEL_ALLOWED_NETWORKS entry must be a CIDR the SSRF guard can use."""
    errors: list[CheckMessage] = []
    for entry in settings.SENTINEL_ALLOWED_NETWORKS:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            errors.append(
                Error(
                    f"SENTINEL_ALLOWED_NETWORKS entry {entry!r} is not a network.",
                    hint="Use CIDR notation separated by commas, e.g. '10.0.0.0/8,fd00::/8'.",
                    id="sentinel.E002",
                )
            )
    return errors


@register()
def check_allowed_hosts(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    if not settings.DEBUG and not settings.ALLOWED_HOSTS:
        return [
            Error(
                "ALLOWED_HOSTS is empty while DEBUG is false; every request would be refused.",
                hint="Set ALLOWED_HOSTS to the host names the site is served on, e.g. "
                "'status.example.com'.",
                id="sentinel.E003",
            )
        ]
    return []


@register()
def check_time_zone(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """SENTINEL_TIME_ZONE must be a zone the zone database knows, or every new
    maintenance window would start with one its own validation refuses."""
    try:
        time_zone(settings.SENTINEL_TIME_ZONE)
    except ValueError as exc:
        return [
            Error(
                f"SENTINEL_TIME_ZONE: {exc}",
                hint="e.g. SENTINEL_TIME_ZONE=Europe/Berlin; the names are those of "
                "/usr/share/zoneinfo (or the tzdata package).",
                id="sentinel.E004",
            )
        ]
    return []


@register()
def check_icmp_sockets(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """Ping monitors need an ICMP socket: a warning, not an error, because only the
    probe workers send echo requests (the web and ingest processes need none), and a
    deployment without ping monitors needs none either."""
    problem = icmp_unavailable()
    if not problem:
        return []
    return [
        Warning(
            f"Ping monitors will fail on this host: {problem}.",
            hint="Run the probe workers as root or with CAP_NET_RAW, or let their group "
            "open ICMP datagram sockets, e.g. sysctl -w net.ipv4.ping_group_range='0 "
            "2147483647'.",
            id="sentinel.W001",
        )
    ]
