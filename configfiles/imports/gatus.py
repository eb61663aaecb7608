"""A Gatus configuration file (``config.yaml``), as a configuration document.

Gatus describes ``endpoints``: ``name``, ``group``, ``url`` (``http(s)://``,
``tcp://host:port``, ``icmp://host``, ``tls://host:port``, or a resolver's address
with a ``dns`` block of ``query-name`` and ``query-type``), ``interval`` (a Go
duration, 60s by default), ``method``, ``headers``, ``body``, ``client.insecure``,
``enabled``, a list of ``conditions`` ("[STATUS] == 200", "[BODY].status == UP",
"[RESPONSE_TIME] < 500", "[CERTIFICATE_EXPIRATION] > 48h") and ``alerts`` by provider
``type`` with a ``failure-threshold``; providers are set up once under ``alerting``.
Conditions we check the same way become monitor settings, the response time and
certificate ones become alert rules, and the others are reported as skipped.
"""

from __future__ import annotations

import math
import re
from typing import Any

from configfiles.document import ConfigFileError, parse
from configfiles.imports import Imported
from configfiles.imports.common import interval_within, tag_name, timeout_within

CONDITION = re.compile(r"^\s*(\[[A-Z_]+\](?:\.[\w.\[\]-]+)?)\s*(==|!=|<=|>=|<|>)\s*(.*?)\s*$")
DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
DURATION_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
DNS_TYPES = {"A", "AAAA", "CNAME", "MX", "TXT", "NS", "SOA", "CAA"}
# Gatus alert providers we have a channel kind for: (kind, the provider's key, ours).
PROVIDERS = {
    "slack": ("slack", "webhook-url", "url"),
    "custom": ("webhook", "url", "url"),
    "email": ("email", "to", "address"),
}


class GatusFileError(ValueError):
    """Not a Gatus configuration."""


def gatus_read(text: str) -> Imported:
    """The endpoints and alert providers of a Gatus configuration that we can check,
    and why each other one is skipped. Raises ``GatusFileError`` for a file that is
    not YAML or has no ``endpoints`` list."""
    try:
        config = parse(text).value
    except ConfigFileError as exc:
        raise GatusFileError(str(exc)) from exc
    if not isinstance(config.get("endpoints"), list):
        raise GatusFileError("not a Gatus configuration: no endpoints list")
    imported = Imported()
    providers = _providers(config.get("alerting") or {}, imported)
    taken: set[str] = set()
    for item in config["endpoints"]:
        if not isinstance(item, dict):
            continue
        try:
            _endpoint(item, imported, providers, taken)
        except (TypeError, ValueError, AttributeError) as exc:  # a list where a map goes...
            imported.skip("endpoint", str(item.get("name")), f"unreadable ({exc})")
    return imported


def _providers(alerting: dict[str, Any], imported: Imported) -> set[str]:
    made = set()
    for provider, settings in sorted(alerting.items()):
        if provider not in PROVIDERS or not isinstance(settings, dict):
            imported.skip(
                "alerting provider", provider, "no channel kind here (email, Slack, webhook)"
            )
            continue
        kind, key, ours = PROVIDERS[provider]
        value = str(settings.get(key) or "")
        if kind == "email" and "," in value:
            imported.note(
                "alerting provider", provider, "only the first of several addresses is kept"
            )
            value = value.split(",")[0].strip()
        imported.channels.append(
            {"name": f"gatus {provider}", "kind": kind, "config": {ours: value}}
        )
        made.add(provider)
    return made


def seconds(text: Any) -> float | None:
    """A Go duration (``90s``, ``5m``, ``1h30m``, ``500ms``) in seconds; None if it is not one."""
    text = str(text).strip()
    parts = DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(n) * DURATION_SECONDS[u] for n, u in parts)


def _endpoint(
    item: dict[str, Any], imported: Imported, providers: set[str], taken: set[str]
) -> None:
    name = str(item.get("name") or item.get("url") or "endpoint")
    target = _target(item, imported, name)
    if target is None:
        return
    entry: dict[str, Any] = {"name": imported.unique_name(name, taken), **target}
    interval, note = interval_within(seconds(item.get("interval", "60s")) or 60)
    if note:
        imported.note("monitor", name, note)
    entry["interval_seconds"] = interval
    client: dict[str, Any] = item["client"] if isinstance(item.get("client"), dict) else {}
    entry["timeout_seconds"] = timeout_within(seconds(client.get("timeout", "10s")) or 10, interval)
    if client.get("insecure") and entry["url"].startswith("https://"):
        entry["tls_verify"] = False
    if item.get("enabled") is False:
        entry["enabled"] = False
    if item.get("group"):
        entry["tags"] = [tag_name(str(item["group"]))]
    rules = _conditions(item, entry, imported, name)
    _alerts(item, entry, rules, imported, providers, name)
    imported.monitors.append(entry)


def _target(item: dict[str, Any], imported: Imported, name: str) -> dict[str, Any] | None:
    url = str(item.get("url") or "")
    if isinstance(item.get("dns"), dict):
        return _dns(item["dns"], url, imported, name)
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in ("http", "https"):
        return _http(item, url)
    if scheme in ("tcp", "tls"):
        return {"kind": scheme, "url": url}
    if scheme == "icmp":
        return {"kind": "ping", "url": "ping://" + url.split("://", 1)[1]}
    imported.skip("endpoint", name, f"{scheme or url!r} endpoints are not supported")
    return None


def _http(item: dict[str, Any], url: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"kind": "http", "url": url}
    method = str(item.get("method") or "GET").upper()
    if method != "GET":
        entry["method"] = method
    if isinstance(item.get("headers"), dict) and item["headers"]:
        entry["headers"] = {str(k): str(v) for k, v in item["headers"].items()}
    if item.get("body"):
        entry["body"] = str(item["body"])
    return entry


def _dns(
    dns: dict[str, Any], resolver: str, imported: Imported, name: str
) -> dict[str, Any] | None:
    record = str(dns.get("query-type") or "A").upper()
    if record not in DNS_TYPES:
        imported.skip("endpoint", name, f"DNS record type {record} is not supported")
        return None
    entry: dict[str, Any] = {
        "kind": "dns",
        "url": f"dns://{str(dns.get('query-name', '')).rstrip('.')}",
    }
    if record != "A":
        entry["dns_record_type"] = record
    if resolver:
        entry["dns_resolver"] = resolver.split("://", 1)[-1]
    return entry


def _conditions(
    item: dict[str, Any], entry: dict[str, Any], imported: Imported, name: str
) -> list[dict[str, Any]]:
    """Turn each condition into a setting or an alert rule; report the rest."""
    rules: list[dict[str, Any]] = []
    for text in item.get("conditions") or []:
        match = CONDITION.match(str(text))
        handled = match is not None and _condition(match.groups(), entry, rules)
        if not handled:
            imported.skip("condition", f"{name}: {text}", "no equivalent check here")
    return rules


def _condition(parts: tuple[str, ...], entry: dict[str, Any], rules: list[dict[str, Any]]) -> bool:
    left, op, right = parts
    right = right.strip("\"'")
    kind = entry["kind"]
    if left == "[STATUS]" and kind == "http":
        return _status(op, right, entry)
    if left in ("[CONNECTED]", "[DNS_RCODE]") and op == "==" and right in ("true", "NOERROR"):
        return True  # what every check of that kind already requires
    if left == "[RESPONSE_TIME]" and op in ("<", "<=") and right.isdigit():
        rules.append({"kind": "latency", "threshold": int(right)})
        return True
    if left == "[CERTIFICATE_EXPIRATION]" and op in (">", ">=") and (s := seconds(right)):
        rules.append({"kind": "tls_expiry", "threshold": max(1, math.ceil(s / 86400))})
        return True
    if left == "[BODY]" and kind == "dns" and op == "==":
        entry.setdefault("dns_expected", []).append(right)
        entry["dns_match"] = "any"
        return True
    if (
        left == "[BODY]"
        and kind == "http"
        and op == "=="
        and right.startswith("pat(*")
        and right.endswith("*)")
    ):
        entry["keyword"] = right[5:-2]
        return True
    if left.startswith("[BODY].") and kind == "http" and op in ("==", "!=", "<", ">"):
        entry.setdefault("json_assertions", []).append(
            {"path": left[7:], "op": op, "value": _json_value(right)}
        )
        return True
    return False


def _status(op: str, right: str, entry: dict[str, Any]) -> bool:
    if not right.isdigit():
        return False
    code = int(right)
    ranges = {
        "==": f"{code}",
        "<": f"100-{code - 1}",
        "<=": f"100-{code}",
        ">=": f"{code}-599",
        ">": f"{code + 1}-599",
    }
    if op not in ranges:
        return False
    entry["expected_status_codes"] = ranges[op]
    return True


def _json_value(text: str) -> Any:
    if text in ("true", "false"):
        return text == "true"
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def _alerts(
    item: dict[str, Any],
    entry: dict[str, Any],
    rules: list[dict[str, Any]],
    imported: Imported,
    providers: set[str],
    name: str,
) -> None:
    """The endpoint's alerts as a down rule (and its latency and certificate rules)
    sending to the matching channels; the failure threshold becomes the monitor's."""
    channels, threshold = [], None
    for alert in item.get("alerts") or []:
        provider = str(alert.get("type", "")) if isinstance(alert, dict) else ""
        if provider not in providers:
            imported.skip("alert", f"{name}: {provider}", "its provider was not imported")
            continue
        channels.append(f"gatus {provider}")
        threshold = int(alert.get("failure-threshold") or 3)
    if threshold is not None:
        entry["confirm_failures"] = min(max(threshold, 1), 20)
        rules.insert(0, {"kind": "down", "threshold": entry["confirm_failures"]})
    for rule in rules:
        rule["channels"] = sorted(set(channels))
    if rules:
        entry["alert_rules"] = rules
