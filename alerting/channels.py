"""Senders: one function per channel kind, each one attempt with a timeout.

A sender returns nothing on success and raises ``DeliveryError`` saying whether
the failure is worth retrying (a timeout, a refused connection, HTTP 429 or 5xx)
or not (a 4xx, a blocked address, a bad configuration). Retrying is the task's
business, not the sender's.

Webhook payload and signature are documented in docs/webhooks.md.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.mail import send_mail

from alerting import netguard
from alerting.models import NotificationChannel

USER_AGENT = "UptimeSentinel-Alerts/1"
SIGNATURE_HEADER = "X-Sentinel-Signature"
TIMESTAMP_HEADER = "X-Sentinel-Timestamp"
DELIVERY_HEADER = "X-Sentinel-Delivery"
EVENT_HEADER = "X-Sentinel-Event"
# Apprise plugins that notify the local desktop or log, not a service: meaningless
# (or worse) on a server, so refused.
APPRISE_LOCAL_SCHEMES = frozenset(
    {"dbus", "kde", "qt", "glib", "gnome", "macosx", "windows", "syslog", "memory"}
)


class DeliveryError(Exception):
    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.message = message[:300]
        self.transient = transient


def sign(*, secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256 over ``<timestamp>.<body>`` (docs/webhooks.md)."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def channel_send(
    *, channel: NotificationChannel, payload: dict[str, Any], delivery_id: str
) -> None:
    """Deliver ``payload`` once through ``channel``; raise DeliveryError on failure."""
    senders = {
        NotificationChannel.Kind.WEBHOOK: _send_webhook,
        NotificationChannel.Kind.SLACK: _send_slack,
        NotificationChannel.Kind.EMAIL: _send_email,
        NotificationChannel.Kind.APPRISE: _send_apprise,
    }
    sender = senders.get(channel.kind)  # type: ignore[call-overload]
    if sender is None:
        raise DeliveryError(f"unknown channel kind {channel.kind!r}", transient=False)
    config = channel.config if isinstance(channel.config, dict) else {}
    sender(config=config, payload=payload, delivery_id=delivery_id)


def _send_webhook(*, config: dict[str, Any], payload: dict[str, Any], delivery_id: str) -> None:
    # The delivery id in the body too: a receiver that keeps bodies, not headers, can
    # still drop a repeat of a send that was in doubt.
    body = json.dumps(
        {**payload, "delivery_id": delivery_id}, separators=(",", ":"), sort_keys=True
    ).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        EVENT_HEADER: str(payload.get("event", "")),
        DELIVERY_HEADER: delivery_id,
        TIMESTAMP_HEADER: timestamp,
    }
    secret = config.get("secret")
    if isinstance(secret, str) and secret:
        headers[SIGNATURE_HEADER] = sign(secret=secret, timestamp=timestamp, body=body)
    _post(url=_url(config), body=body, headers=headers)


def _send_slack(*, config: dict[str, Any], payload: dict[str, Any], delivery_id: str) -> None:
    body = json.dumps({"text": payload.get("text", "")}).encode()
    _post(url=_url(config), body=body, headers={"Content-Type": "application/json"})


def _url(config: dict[str, Any]) -> str:
    url = config.get("url")
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
        raise DeliveryError("the channel has no http(s) URL", transient=False)
    return url


def _post(*, url: str, body: bytes, headers: dict[str, str]) -> None:
    timeout = settings.SENTINEL_NOTIFY_TIMEOUT_SECONDS
    session = requests.Session()
    # Proxies from the environment would connect on our behalf, past the guard.
    session.trust_env = False
    try:
        with netguard.guarded():
            response = session.post(
                url,
                data=body,
                headers={"User-Agent": USER_AGENT, **headers},
                timeout=(min(timeout, 5), timeout),
                allow_redirects=False,  # a redirect could point anywhere; not followed
            )
    except requests.RequestException as exc:
        reason = netguard.blocked_reason()
        if reason:
            raise DeliveryError(f"blocked: {reason}", transient=False) from exc
        raise DeliveryError(f"{type(exc).__name__}: {exc}", transient=True) from exc
    finally:
        session.close()
    _check_status(response.status_code)


def _check_status(code: int) -> None:
    if 200 <= code < 300:
        return
    if code == 429 or code == 408 or code >= 500:
        raise DeliveryError(f"HTTP {code}", transient=True)
    hint = " (redirects are not followed)" if 300 <= code < 400 else ""
    raise DeliveryError(f"HTTP {code}{hint}", transient=False)


def _send_email(*, config: dict[str, Any], payload: dict[str, Any], delivery_id: str) -> None:
    # The SMTP relay is the operator's (often on a private network), not the user's,
    # so it is not behind the guard.
    address = config.get("address")
    if not isinstance(address, str) or "@" not in address:
        raise DeliveryError("the channel has no email address", transient=False)
    try:
        send_mail(
            subject=str(payload.get("title", "")),
            message=str(payload.get("text", "")),
            from_email=None,
            recipient_list=[address],
        )
    except OSError as exc:  # smtplib errors are OSErrors
        raise DeliveryError(f"SMTP: {exc}", transient=True) from exc


def _send_apprise(*, config: dict[str, Any], payload: dict[str, Any], delivery_id: str) -> None:
    import apprise

    url = config.get("url")
    if not isinstance(url, str) or "://" not in url:
        raise DeliveryError("the channel has no Apprise URL", transient=False)
    if url.split("://", 1)[0].lower() in APPRISE_LOCAL_SCHEMES:
        raise DeliveryError("local Apprise notifiers are not allowed", transient=False)
    plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    if plugin is None:
        raise DeliveryError("not a valid Apprise URL", transient=False)
    timeout = float(settings.SENTINEL_NOTIFY_TIMEOUT_SECONDS)
    plugin.socket_connect_timeout = min(timeout, 5.0)
    plugin.socket_read_timeout = timeout
    # The plugin is called directly (not Apprise.notify, which may use a thread pool)
    # so that its lookups happen in this thread, inside the guard.
    with netguard.guarded():
        ok = plugin.notify(body=str(payload.get("text", "")), title=str(payload.get("title", "")))
    reason = netguard.blocked_reason()
    if reason:
        raise DeliveryError(f"blocked: {reason}", transient=False)
    if not ok:
        raise DeliveryError("the Apprise service refused or did not answer", transient=True)
