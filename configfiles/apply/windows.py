"""Maintenance windows in a file: matched by name, times in their zone."""

from __future__ import annotations

import datetime as dt
from typing import Any

from alerting.models import MaintenanceWindow
from configfiles.apply.report import Change, plain
from configfiles.apply.steps import Steps
from configfiles.document import Node
from configfiles.fields import WINDOW_FIELDS, WINDOW_KEYS, default
from core.time import from_wall_time, time_zone
from monitors.models import Monitor


class WindowSteps(Steps):
    """Create or update each maintenance window the file names."""

    def _window(self, node: Node, path: str) -> None:
        if self._unknown_keys(node, path, WINDOW_KEYS):
            return
        existing: MaintenanceWindow | None = self._lookup(self.windows, node, path, "window")
        monitor_names = self._names(node, "monitors", path)
        tag_names = self._names(node, "tags", path)
        fields = self._window_fields(node, path)
        if monitor_names is None or tag_names is None or fields is None:
            return
        monitors = self._window_monitors(node, path, monitor_names)
        tags = [
            self._tag_ensure(t.strip().lower(), node, "tags", f"{path}.tags") for t in tag_names
        ]
        if monitors is None or None in tags:
            return
        window = existing or MaintenanceWindow(**self.scope.new_fields(), name=node.value["name"])
        before = _window_state(window) if existing else None
        for name, value in fields.items():
            setattr(window, name, value)
        wanted = {
            **fields,
            "monitors": sorted(m.name for m in monitors),
            "tags": sorted(t.name for t in tags if t),
        }
        if before == wanted:
            self.unchanged += 1
            return
        window.full_clean()
        window.save()
        window.monitors.set(monitors)
        window.tags.set([t for t in tags if t])
        if before is None:
            self.changes.append(Change("create", "maintenance window", window.name))
        else:
            details = tuple(
                f"{k}: {plain(before[k])} -> {plain(v)}"
                for k, v in wanted.items()
                if before[k] != v
            )
            self.changes.append(Change("update", "maintenance window", window.name, details))

    def _window_fields(self, node: Node, path: str) -> dict[str, Any] | None:
        data = node.value
        fields: dict[str, Any] = {
            "time_zone": data.get("time_zone") or default(MaintenanceWindow, "time_zone"),
            "repeat": data.get("repeat") or MaintenanceWindow.Repeat.NONE,
        }
        try:
            zone = time_zone(str(fields["time_zone"]))
        except ValueError as exc:
            self._problem(node, "time_zone", f"{path}.time_zone", str(exc))
            return None
        for name in ("starts_at", "ends_at", "repeat_until"):
            value = data.get(name)
            if value is None:
                if name != "repeat_until":
                    self._problem(
                        node, None, f"{path}.{name}", "is required (ISO 8601 date and time)"
                    )
                    return None
                fields[name] = None
                continue
            moment = _moment(value, zone)
            if moment is None:
                self._problem(
                    node,
                    name,
                    f"{path}.{name}",
                    f"{value!r} is not an ISO 8601 date and time, e.g. 2026-12-06T02:00:00+01:00",
                )
                return None
            fields[name] = moment
        return fields

    def _window_monitors(self, node: Node, path: str, names: list[str]) -> list[Monitor] | None:
        found = []
        for name in names:
            monitor = self.monitors.get(name)
            if monitor is None or monitor.pk is None:
                self._problem(node, "monitors", f"{path}.monitors", f"no monitor named {name!r}")
                return None
            found.append(monitor)
        return found


def _window_state(window: MaintenanceWindow) -> dict[str, Any]:
    state = {name: getattr(window, name) for name in WINDOW_FIELDS}
    state["monitors"] = sorted(m.name for m in window.monitors.all())
    state["tags"] = sorted(t.name for t in window.tags.all())
    return state


def _moment(value: Any, zone: Any) -> dt.datetime | None:
    """An aware datetime from the file: ISO 8601 with an offset, or without one as the
    window's own wall-clock time."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, dt.datetime):
        return None
    return value if value.tzinfo else from_wall_time(value, zone)
