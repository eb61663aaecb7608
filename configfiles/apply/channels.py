"""Notification channels in a file: matched by name, secrets resolved."""

from __future__ import annotations

from typing import Any

from alerting.models import NotificationChannel
from configfiles.apply.report import Change, plain
from configfiles.apply.steps import Steps
from configfiles.document import Node
from configfiles.fields import CHANNEL_KEYS, secret_keys


class ChannelSteps(Steps):
    """Create or update each channel the file names."""

    def _channel(self, node: Node, path: str) -> None:
        if self._unknown_keys(node, path, CHANNEL_KEYS):
            return
        data = node.value
        existing: NotificationChannel | None = self._lookup(self.channels, node, path, "channel")
        kind = data.get("kind")
        config = data.get("config") or {}
        if not isinstance(config, dict):
            self._problem(node, "config", f"{path}.config", "must be a mapping")
            return
        stored = existing.config if existing and existing.kind == kind else {}
        resolved = self._channel_config(kind, config, stored, node.child("config"), path)
        if resolved is None:
            return
        channel = existing or NotificationChannel(**self.scope.new_fields(), name=data["name"])
        before = (channel.kind, dict(channel.config or {}))
        channel.kind, channel.config = kind, resolved
        details = self._channel_details(before, channel)
        if existing and not details:
            self.unchanged += 1
            return
        channel.full_clean()
        channel.save()
        self.channels[channel.name] = channel
        self.changes.append(
            Change(
                "update" if existing else "create",
                "channel",
                channel.name,
                details if existing else (),
            )
        )

    def _channel_config(
        self, kind: Any, config: dict[str, Any], stored: dict[str, Any], node: Node, path: str
    ) -> dict[str, Any] | None:
        """The config to store: the file's values with its secrets resolved, and a
        stored secret the file leaves out kept."""
        secrets = secret_keys(kind)
        resolved: dict[str, Any] = {k: v for k, v in config.items() if k not in secrets}
        ok = True
        for key in secrets:
            if key not in config:
                if key in stored:
                    resolved[key] = stored[key]
                continue
            where = f"{path}.config.{key}"
            found, value = self._secret(config[key], stored.get(key), node, key, where)
            ok = ok and found
            resolved[key] = value
        return resolved if ok else None

    def _channel_details(
        self, before: tuple[Any, dict[str, Any]], channel: NotificationChannel
    ) -> tuple[str, ...]:
        old_kind, old = before
        details = [f"kind: {old_kind} -> {channel.kind}"] if old_kind != channel.kind else []
        secrets = secret_keys(channel.kind)
        for key in sorted(set(old) | set(channel.config)):
            if old.get(key) != channel.config.get(key):
                shown = (
                    "(secret changed)"
                    if key in secrets
                    else (f"{plain(old.get(key))} -> {plain(channel.config.get(key))}")
                )
                details.append(f"config.{key}: {shown}")
        return tuple(details)
