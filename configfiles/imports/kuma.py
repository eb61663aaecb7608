"""Uptime Kuma's JSON backup (Settings > Backup > Export), as a configuration document.

The backup is ``{"version", "notificationList", "monitorList", ...}``: each
notification has a ``name`` and a ``config`` (a JSON string, or an object) whose
``type`` names its provider; each monitor is the server's ``Monitor.toJSON()``: ``type``
(http, keyword, port, ping, dns, and many we do not check), ``url``, ``hostname``,
``port``, ``interval``, ``maxretries``, ``accepted_statuscodes``, ``keyword``,
``invertKeyword``, ``ignoreTls``, ``headers`` and ``body`` (strings), ``active``,
``tags`` and ``notificationIDList`` (notification id -> true). A push monitor becomes a
heartbeat (its job must be pointed at the new ping URL).
"""

from __future__ import annotations

import base64
import json
from typing import Any

from configfiles.imports import Imported
from configfiles.imports.common import interval_within, tag_name, timeout_within
from monitors import validators as v

# Provider -> (our channel kind, the config key holding the address or URL).
PROVIDERS = {
    "smtp": ("email", "smtpTo"),
    "slack": ("slack", "slackwebhookURL"),
    "webhook": ("webhook", "webhookURL"),
    "apprise": ("apprise", "appriseNotificationURL"),
}
DNS_TYPES = {"A", "AAAA", "CNAME", "MX", "TXT", "NS", "SOA", "CAA"}
# Kuma's default "notify when the certificate expires in" days are 7, 14 and 21.
TLS_EXPIRY_DAYS = 21


class KumaFileError(ValueError):
    """Not an Uptime Kuma backup."""


def kuma_read(text: str) -> Imported:
    """The monitors and notifications of an Uptime Kuma backup that we can check, and
    a reason for each one we cannot. Raises ``KumaFileError`` for a file that is not a
    backup (not JSON, or no ``monitorList``)."""
    try:
        backup = json.loads(text)
    except json.JSONDecodeError as exc:
        raise KumaFileError(f"not JSON (line {exc.lineno}: {exc.msg})") from exc
    if not isinstance(backup, dict) or not isinstance(backup.get("monitorList"), list):
        raise KumaFileError("not an Uptime Kuma backup: no monitorList")
    imported = Imported()
    channel_names = _notifications(backup.get("notificationList") or [], imported)
    taken: set[str] = set()
    for item in backup["monitorList"]:
        if not isinstance(item, dict):
            continue
        try:
            _monitor(item, imported, channel_names, taken)
        except (TypeError, ValueError) as exc:  # a number that is not one, and the like
            imported.skip("monitor", str(item.get("name")), f"unreadable ({exc})")
    return imported


def _notifications(items: list[Any], imported: Imported) -> dict[str, str]:
    """Our channels from Kuma's notifications; returns Kuma id -> channel name."""
    names: dict[str, str] = {}
    taken: set[str] = set()
    for item in items:
        if not isinstance(item, dict):
            continue
        config = item.get("config")
        if isinstance(config, str):
            try:
                config = json.loads(config)
            except json.JSONDecodeError:
                config = {}
        config = config if isinstance(config, dict) else {}
        name = str(item.get("name") or config.get("name") or f"notification {item.get('id')}")
        provider = str(config.get("type", ""))
        if provider not in PROVIDERS:
            imported.skip(
                "notification",
                name,
                f"provider {provider!r} has no channel kind here (email, Slack, webhook, Apprise)",
            )
            continue
        kind, key = PROVIDERS[provider]
        unique = imported.unique_name(name, taken)
        config_ours = {_our_key(kind): config.get(key) or ""}
        imported.channels.append({"name": unique, "kind": kind, "config": config_ours})
        names[str(item.get("id"))] = unique
    return names


def _our_key(kind: str) -> str:
    return "address" if kind == "email" else "url"


def _monitor(
    item: dict[str, Any], imported: Imported, channels: dict[str, str], taken: set[str]
) -> None:
    name = str(item.get("name") or f"monitor {item.get('id')}")
    kind = str(item.get("type", ""))
    if item.get("upsideDown"):
        imported.skip(
            "monitor", name, "upside-down mode (up when the check fails) is not supported"
        )
        return
    target = _target(item, kind, imported, name)
    if target is None:
        return
    entry: dict[str, Any] = {"name": imported.unique_name(name, taken), **target}
    if kind == "push":
        _heartbeat_schedule(item, entry, imported, name)
    else:
        _check_schedule(item, entry, imported, name)
    if not item.get("active", True):
        entry["enabled"] = False
    tags = [tag_name(_tag_label(t)) for t in item.get("tags") or [] if isinstance(t, dict)]
    if tags:
        entry["tags"] = sorted(set(tags))
    entry["alert_rules"] = _rules(item, entry, channels)
    imported.monitors.append(entry)


def _check_schedule(
    item: dict[str, Any], entry: dict[str, Any], imported: Imported, name: str
) -> None:
    interval, note = interval_within(float(item.get("interval") or 60))
    if note:
        imported.note("monitor", name, note)
    entry["interval_seconds"] = interval
    entry["timeout_seconds"] = timeout_within(
        float(item.get("timeout") or interval * 0.8), interval
    )
    entry["confirm_failures"] = min(max(int(item.get("maxretries") or 0) + 1, 1), 20)


def _heartbeat_schedule(
    item: dict[str, Any], entry: dict[str, Any], imported: Imported, name: str
) -> None:
    """A push monitor's interval becomes the heartbeat's period; Kuma marks it down
    after its retries, each a retry interval apart, which becomes the grace time."""
    low, high = v.MIN_HEARTBEAT_SECONDS, v.MAX_HEARTBEAT_SECONDS
    period = int(float(item.get("interval") or 60))
    entry["heartbeat_period_seconds"] = min(max(period, low), high)
    if entry["heartbeat_period_seconds"] != period:
        imported.note(
            "monitor", name, f"period {period} s set to {entry['heartbeat_period_seconds']} s"
        )
    retries = int(item.get("maxretries") or 0) * int(float(item.get("retryInterval") or period))
    entry["heartbeat_grace_seconds"] = min(max(retries, low), high)
    imported.note("monitor", name, "a heartbeat now: point the job at its new ping URL")


def _tag_label(tag: dict[str, Any]) -> str:
    value = str(tag.get("value") or "")
    return f"{tag.get('name', '')}-{value}" if value else str(tag.get("name", ""))


def _target(
    item: dict[str, Any], kind: str, imported: Imported, name: str
) -> dict[str, Any] | None:
    if kind in ("http", "keyword"):
        return _http(item, kind, imported, name)
    host = str(item.get("hostname") or "")
    if kind == "port":
        return {"kind": "tcp", "url": f"tcp://{host}:{item.get('port')}"}
    if kind == "ping":
        return {"kind": "ping", "url": f"ping://{host}"}
    if kind == "push":
        return {"kind": "heartbeat", "url": ""}
    if kind == "dns":
        return _dns(item, host, imported, name)
    why = {
        "group": "a group holds monitors and checks nothing itself (its members are imported)",
        "json-query": "its JSONata query cannot be converted; add a JSON assertion by hand",
    }.get(kind, f"monitor type {kind!r} is not supported")
    imported.skip("monitor", name, why)
    return None


def _http(item: dict[str, Any], kind: str, imported: Imported, name: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"kind": "http", "url": str(item.get("url") or "")}
    method = str(item.get("method") or "GET").upper()
    if method != "GET":
        entry["method"] = method
    headers = _headers(item, imported, name)
    if headers:
        entry["headers"] = headers
    if item.get("body"):
        entry["body"] = str(item["body"])
    codes = item.get("accepted_statuscodes") or ["200-299"]
    if codes != ["200-299"]:
        entry["expected_status_codes"] = ",".join(str(c) for c in codes)
    if kind == "keyword" and item.get("keyword"):
        entry["keyword"] = str(item["keyword"])
        if item.get("invertKeyword"):
            entry["keyword_mode"] = "absent"
    if item.get("ignoreTls") and entry["url"].lower().startswith("https://"):
        entry["tls_verify"] = False
    return entry


def _headers(item: dict[str, Any], imported: Imported, name: str) -> dict[str, str]:
    raw = item.get("headers")
    headers: dict[str, str] = {}
    if isinstance(raw, str) and raw.strip():
        try:
            parsed = json.loads(raw)
        except json.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict):
            headers = {str(k): str(v) for k, v in parsed.items()}
        else:
            imported.note("monitor", name, "its headers are not a JSON object and were left out")
    if item.get("basic_auth_user"):
        pair = f"{item['basic_auth_user']}:{item.get('basic_auth_pass') or ''}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        imported.note("monitor", name, "basic auth became an Authorization header")
    return headers


def _dns(item: dict[str, Any], host: str, imported: Imported, name: str) -> dict[str, Any] | None:
    record = str(item.get("dns_resolve_type") or "A")
    if record not in DNS_TYPES:
        imported.skip("monitor", name, f"DNS record type {record} is not supported")
        return None
    entry: dict[str, Any] = {"kind": "dns", "url": f"dns://{host}"}
    if record != "A":
        entry["dns_record_type"] = record
    server = str(item.get("dns_resolve_server") or "")
    port = int(item.get("port") or 53)
    if server:
        entry["dns_resolver"] = server if port == 53 else f"{server}:{port}"
    return entry


def _rules(
    item: dict[str, Any], entry: dict[str, Any], channels: dict[str, str]
) -> list[dict[str, Any]]:
    ids = item.get("notificationIDList") or {}
    names = sorted(channels[str(k)] for k, on in ids.items() if on and str(k) in channels)
    if not names:
        return []
    rules = [{"kind": "down", "threshold": entry.get("confirm_failures", 2), "channels": names}]
    tls = entry["kind"] == "http" and entry["url"].lower().startswith("https://")
    if item.get("expiryNotification") and tls and entry.get("tls_verify", True):
        rules.append({"kind": "tls_expiry", "threshold": TLS_EXPIRY_DAYS, "channels": names})
    return rules
