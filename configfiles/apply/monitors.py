"""Monitors in a file: matched by name, the whole monitor described."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from alerting.models import MonitorAlerting
from configfiles.apply.report import Change, plain
from configfiles.apply.steps import Steps
from configfiles.document import Node
from configfiles.fields import MONITOR_FIELDS, MONITOR_KEYS, default, model_field
from monitors.models import Monitor
from monitors.services import monitor_create, monitor_update


class MonitorSteps(Steps):
    """Create or update each monitor the file names, with its tags and reminder."""

    def _monitor(self, node: Node, path: str) -> None:
        # Unknown keys are reported and the rest still checked: one pass finds all.
        self._unknown_keys(node, path, MONITOR_KEYS)
        data = node.value
        existing: Monitor | None = self._lookup(self.monitors, node, path, "monitor")
        wanted = self._monitor_fields(node, path, existing)
        tags = self._names(node, "tags", path)
        reminder = self._reminder(node, path)
        if wanted is None or tags is None or reminder is None:
            return
        tags = sorted({t.strip().lower() for t in tags if t.strip()})
        if any(self._tag_ensure(t, node, "tags", f"{path}.tags") is None for t in tags):
            return
        if existing is None:
            monitor = monitor_create(
                **self.scope.new_fields(), name=data["name"], tags=tags, **wanted
            )
            self._reminder_save(monitor, reminder, node, path)
            self.monitors[monitor.name] = monitor
            self.changes.append(Change("create", "monitor", monitor.name))
            return
        changed = {k: v for k, v in wanted.items() if getattr(existing, k) != v}
        old_tags = sorted(t.name for t in existing.tags.all())
        details = [f"{k}: {plain(getattr(existing, k))} -> {plain(v)}" for k, v in changed.items()]
        if old_tags != tags:
            details.append(f"tags: {old_tags} -> {tags}")
        details += self._reminder_save(existing, reminder, node, path)
        if not details:
            self.unchanged += 1
            return
        monitor_update(monitor=existing, tags=tags if old_tags != tags else None, **changed)
        self.changes.append(Change("update", "monitor", existing.name, tuple(details)))

    def _reminder(self, node: Node, path: str) -> int | None:
        """The monitor's ``reminder_minutes`` (an alerting option, 0: no reminders)."""
        try:
            value = model_field(MonitorAlerting, "reminder_minutes").to_python(
                node.value.get("reminder_minutes", 0)
            )
        except ValidationError as exc:
            for message in exc.messages:
                self._problem(node, "reminder_minutes", f"{path}.reminder_minutes", message)
            return None
        return int(value or 0)

    def _reminder_save(self, monitor: Monitor, minutes: int, node: Node, path: str) -> list[str]:
        """Store the reminder interval when it changed; the change, as report details."""
        options: MonitorAlerting | None = getattr(monitor, "alerting", None)
        old = options.reminder_minutes if options else 0
        if old == minutes:
            return []
        options = options or MonitorAlerting(monitor=monitor)
        options.reminder_minutes = minutes
        try:
            options.full_clean(validate_unique=False)
        except ValidationError as exc:
            self._invalid(exc, node, path)
            return []
        options.save()
        return [f"reminder_minutes: {old} -> {minutes}"]

    def _monitor_fields(
        self, node: Node, path: str, existing: Monitor | None
    ) -> dict[str, Any] | None:
        """Every setting: the file's value, or the default for one it leaves out (a
        file describes the whole monitor), converted as the model's fields convert."""
        wanted: dict[str, Any] = {}
        ok = True
        for name in (*MONITOR_FIELDS, "enabled"):
            field_ = model_field(Monitor, name)
            if name not in node.value:
                wanted[name] = default(Monitor, name)
                continue
            try:
                wanted[name] = field_.to_python(node.value[name])
            except ValidationError as exc:
                ok = False
                for message in exc.messages:
                    self._problem(node, name, f"{path}.{name}", message)
        headers = wanted.get("headers")
        if ok and isinstance(headers, dict):
            stored = existing.headers if existing and isinstance(existing.headers, dict) else {}
            for key, value in headers.items():
                where = f"{path}.headers.{key}"
                found, headers[key] = self._secret(
                    value, stored.get(key), node.child("headers"), key, where
                )
                ok = ok and found
        return _as_stored(wanted) if ok else None


def _as_stored(wanted: dict[str, Any]) -> dict[str, Any]:
    """``wanted`` as a save would store it (``Monitor.prepare_config``)."""
    probe = Monitor(**wanted)
    probe.prepare_config()
    return {name: getattr(probe, name) for name in wanted}
