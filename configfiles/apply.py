"""Make an owner's objects match a configuration file (``config_apply``).

Objects are matched by name (a channel, monitor or maintenance window) and alert rules
by kind within their monitor. Every object is validated by its model's own ``clean()``
(the monitor services for monitors), so a file is refused for the same reasons as the
admin, the dashboard form and the API; every error is collected with its line, and
one error rolls the whole apply back. A dry run is the same apply, rolled back.
"""

from __future__ import annotations

import datetime as dt
import difflib
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import models, transaction

from alerting.models import AlertRule, MaintenanceWindow, MonitorAlerting, NotificationChannel
from configfiles.document import FORMAT_VERSION, ConfigFileError, Node, Problem, parse
from configfiles.export import rule_sort_key
from configfiles.fields import (
    CHANNEL_KEYS,
    MONITOR_FIELDS,
    MONITOR_KEYS,
    RULE_FIELDS,
    RULE_KEYS,
    TOP_KEYS,
    WINDOW_FIELDS,
    WINDOW_KEYS,
    default,
    model_field,
    secret_keys,
)
from configfiles.models import ConfigApply
from configfiles.scope import Scope
from core.db import named_lock
from core.time import from_wall_time, time_zone
from monitors.models import Monitor, Tag
from monitors.services import monitor_create, monitor_update


@dataclass(frozen=True)
class Change:
    """One object created, updated or deleted; ``details`` name what changed (never a
    secret's value)."""

    action: str  # "create" | "update" | "delete"
    kind: str  # "tag", "channel", "monitor", "alert rule", "maintenance window"
    name: str
    details: tuple[str, ...] = ()

    def __str__(self) -> str:
        sign = {"create": "+", "update": "~", "delete": "-"}[self.action]
        text = f"{sign} {self.kind} {self.name!r}"
        return f"{text}: {'; '.join(self.details)}" if self.details else text

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "kind": self.kind,
            "name": self.name,
            "details": list(self.details),
        }


@dataclass
class ApplyReport:
    """What an apply did (or, for a dry run, would do)."""

    changes: list[Change] = field(default_factory=list)
    unchanged: int = 0
    kept: list[str] = field(default_factory=list)  # not in the file, left (no --prune)
    dry_run: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    def summary(self) -> str:
        counts = Counter(c.action for c in self.changes)
        verb = "would be" if self.dry_run else ""
        parts = [f"{counts[a]} {verb} {d}".replace("  ", " ") for a, d in _ACTIONS]
        line = ", ".join(parts) + f", {self.unchanged} unchanged"
        if self.kept:
            line += f"; {len(self.kept)} not in the file kept (--prune deletes them)"
        return line

    def lines(self) -> list[str]:
        return [str(c) for c in self.changes] + [self.summary()]

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "changed": self.changed,
            "changes": [c.as_dict() for c in self.changes],
            "unchanged": self.unchanged,
            "kept": self.kept,
            "summary": self.summary(),
        }


_ACTIONS = (("create", "created"), ("update", "updated"), ("delete", "deleted"))
# How long an apply waits for another one to the same objects to finish.
APPLY_WAIT_SECONDS = 30


class ApplyBusyError(Exception):
    """Another apply to the same objects held the lock for ``APPLY_WAIT_SECONDS``."""


def config_apply(
    *,
    scope: Scope,
    text: str | None = None,
    document: Node | None = None,
    prune: bool = False,
    dry_run: bool = False,
    applied_by: User | None = None,
    source: str = ConfigApply.Source.COMMAND,
) -> ApplyReport:
    """Apply a file (``text``, YAML or JSON) or a parsed ``document`` to ``scope``:
    create and update what it names, delete what it does not when ``prune``. In one
    transaction: raises ``ConfigFileError`` (every problem, with its line) and changes
    nothing if any object is invalid; ``dry_run`` reports and rolls back. A real apply
    that changed something is recorded as a ``ConfigApply`` row. Applies to one scope
    run one at a time; raises ``ApplyBusyError`` after waiting ``APPLY_WAIT_SECONDS``."""
    root = document if document is not None else parse(text or "")
    # Two applies at once could both create a monitor of one name; the second waits.
    with named_lock(scope.lock_name(), timeout=APPLY_WAIT_SECONDS) as taken:
        if not taken:
            raise ApplyBusyError(f"another apply to {scope} is still running; try again")
        return _apply_locked(scope, root, prune, dry_run, applied_by, source)


def _apply_locked(
    scope: Scope,
    root: Node,
    prune: bool,
    dry_run: bool,
    applied_by: User | None,
    source: str,
) -> ApplyReport:
    with transaction.atomic():
        applier = _Applier(scope=scope, prune=prune)
        applier.run(root)
        if applier.problems:
            raise ConfigFileError(sorted(applier.problems, key=lambda p: p.line or 0))
        report = ApplyReport(
            changes=applier.changes,
            unchanged=applier.unchanged,
            kept=applier.kept,
            dry_run=dry_run,
        )
        if dry_run:
            transaction.set_rollback(True)
        elif report.changed:
            ConfigApply.record(
                scope=scope,
                changes=[(c.action, str(c)) for c in report.changes],
                applied_by=applied_by,
                source=source,
            )
    return report


def _plain(value: Any) -> str:
    return repr(value) if not isinstance(value, str) else repr(value[:80])


class _Applier:
    """One apply: walks the document in dependency order (tags, channels, monitors,
    their rules, windows, then pruning), collecting changes and problems."""

    def __init__(self, *, scope: Scope, prune: bool) -> None:
        self.scope = scope
        self.prune = prune
        self.problems: list[Problem] = []
        self.changes: list[Change] = []
        self.unchanged = 0
        self.kept: list[str] = []
        self.tags: dict[str, Tag] = {}  # looked up or created once per apply
        self.channels = self._existing(scope.channels())
        # Everything compared for an unchanged monitor, in four queries for them all.
        self.monitors = self._existing(
            scope.monitors()
            .select_related("alerting")
            .prefetch_related("tags", "alert_rules__channels")
        )
        self.windows = self._existing(scope.windows())

    # --- the walk -------------------------------------------------------------

    def run(self, root: Node) -> None:
        self._check_top(root)
        if self.problems:
            return
        sections = {
            s: self._items(root, s) for s in ("channels", "monitors", "maintenance_windows")
        }
        self._tags(root.child("tags"))
        for index, node in sections["channels"]:
            self._guard(self._channel, node, f"channels[{index}]")
        for index, node in sections["monitors"]:
            self._guard(self._monitor, node, f"monitors[{index}]")
        for index, node in sections["monitors"]:
            self._guard(self._rules, node, f"monitors[{index}]")
        for index, node in sections["maintenance_windows"]:
            self._guard(self._window, node, f"maintenance_windows[{index}]")
        if not self.problems:
            self._prune(sections)

    def _guard(self, step: Callable[[Node, str], None], node: Node, path: str) -> None:
        try:
            step(node, f'{path} "{node.value["name"]}"')
        except ValidationError as exc:
            self._invalid(exc, node, f'{path} "{node.value["name"]}"')

    def _problem(self, node: Node, key: Any, path: str, message: str) -> None:
        line = node.line_of(key) if key is not None else node.line
        self.problems.append(Problem(line, path, message))

    def _invalid(self, exc: ValidationError, node: Node, path: str) -> None:
        """A model's ValidationError as problems on the lines of the fields it names."""
        errors = dict(exc.message_dict) if hasattr(exc, "error_dict") else {"": exc.messages}
        for key, messages in errors.items():
            where = f"{path}.{key}" if key and key != "__all__" else path
            for message in messages:
                self._problem(node, key if key in node.lines else None, where, message)

    def _check_top(self, root: Node) -> None:
        for key in root.value:
            if key not in TOP_KEYS:
                known = ", ".join(sorted(TOP_KEYS))
                self._problem(root, key, key, f"unknown section (known: {known})")
        if root.value.get("version") != FORMAT_VERSION:
            self._problem(root, "version", "version", f"must be {FORMAT_VERSION}")

    def _items(self, root: Node, section: str) -> list[tuple[int, Node]]:
        """The named mappings of a section, each checked for a unique, non-empty name."""
        node = root.child(section)
        if node.value is None:
            return []
        if not isinstance(node.value, list):
            self._problem(root, section, section, "must be a list")
            return []
        items, seen = [], set()
        for index, item in enumerate(node.value):
            path = f"{section}[{index}]"
            child = node.child(index)
            name = item.get("name") if isinstance(item, dict) else None
            if not isinstance(item, dict):
                self._problem(node, index, path, "must be a mapping with a name")
            elif not isinstance(name, str) or not name.strip():
                self._problem(child, "name", f"{path}.name", "a non-empty name is required")
            elif name in seen:
                self._problem(child, "name", f"{path}.name", f"{name!r} is named twice in the file")
            else:
                seen.add(name)
                items.append((index, child))
        return items

    def _existing(self, queryset: models.QuerySet[Any]) -> dict[str, Any]:
        """The scope's objects by name; a name two of them share maps to None (ambiguous)."""
        found: dict[str, Any] = {}
        for obj in queryset:
            found[obj.name] = None if obj.name in found else obj
        return found

    def _lookup(self, table: dict[str, Any], node: Node, path: str, what: str) -> Any:
        name = node.value["name"]
        if name in table and table[name] is None:
            self._problem(
                node,
                "name",
                f"{path}.name",
                f"more than one existing {what} is named {name!r}; rename all but one first",
            )
            raise _Skip
        return table.get(name)

    def _unknown_keys(self, node: Node, path: str, known: frozenset[str]) -> bool:
        bad = [k for k in node.value if k not in known]
        for key in bad:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            self._problem(node, key, f"{path}.{key}", f"unknown field{hint}")
        return bool(bad)

    def _names(self, node: Node, key: str, path: str) -> list[str] | None:
        value = node.value.get(key, [])
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self._problem(node, key, f"{path}.{key}", "must be a list of names")
            return None
        return value

    # --- tags -----------------------------------------------------------------

    def _tags(self, node: Node) -> None:
        names = node.value or []
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            self.problems.append(Problem(node.line, "tags", "must be a list of tag names"))
            return
        for index, name in enumerate(names):
            self._tag_ensure(name.strip().lower(), node, index, f"tags[{index}]")

    def _tag_ensure(self, name: str, node: Node, key: Any, path: str) -> Tag | None:
        if name in self.tags:
            return self.tags[name]
        try:
            Tag(name=name).clean_fields()
        except ValidationError as exc:
            for message in exc.message_dict.get("name", exc.messages):
                self._problem(node, key, path, f"tag {name!r}: {message}")
            return None
        tag, created = Tag.objects.get_or_create(name=name)
        if created:
            self.changes.append(Change("create", "tag", name))
        self.tags[name] = tag
        return tag

    # --- channels -------------------------------------------------------------

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

    def _secret(
        self, value: Any, stored: Any, node: Node, key: str, where: str
    ) -> tuple[bool, Any]:
        """(ok, value) of a value that may be a reference, ``{"env": NAME}``: the
        variable's value where it is set, else the stored value (an apply never wipes a
        secret it does not set), else a problem. Any other value is itself."""
        if not isinstance(value, dict):
            return True, value
        env = value.get("env")
        if set(value) != {"env"} or not isinstance(env, str):
            self._problem(node, key, where, "a secret is a string or {env: NAME}")
            return False, None
        found = os.environ.get(env)
        if found is not None:
            return True, found
        if stored is not None:
            return True, stored
        self._problem(
            node, key, where, f"the environment variable {env} is not set and no value is stored"
        )
        return False, None

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
                    else (f"{_plain(old.get(key))} -> {_plain(channel.config.get(key))}")
                )
                details.append(f"config.{key}: {shown}")
        return tuple(details)

    # --- monitors -------------------------------------------------------------

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
        details = [
            f"{k}: {_plain(getattr(existing, k))} -> {_plain(v)}" for k, v in changed.items()
        ]
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
        return wanted if ok else None

    # --- alert rules ----------------------------------------------------------

    def _rules(self, node: Node, path: str) -> None:
        monitor = self.monitors.get(node.value["name"])
        rules_node = node.child("alert_rules")
        items = rules_node.value or []
        if monitor is None or monitor.pk is None:
            return
        if not isinstance(items, list):
            self._problem(node, "alert_rules", f"{path}.alert_rules", "must be a list")
            return
        wanted = []
        for index in range(len(items)):
            rule = self._rule_wanted(rules_node.child(index), f"{path}.alert_rules[{index}]")
            if rule is not None:
                wanted.append((index, rule))
        if len(wanted) == len(items):
            self._rules_match(monitor, wanted, rules_node, path)

    def _rule_wanted(self, node: Node, path: str) -> dict[str, Any] | None:
        if not isinstance(node.value, dict):
            self._problem(node, None, path, "must be a mapping (kind, threshold, channels)")
            return None
        if self._unknown_keys(node, path, RULE_KEYS):
            return None
        names = self._names(node, "channels", path)
        if names is None:
            return None
        missing = [n for n in names if self.channels.get(n) is None]
        for name in missing:
            self._problem(node, "channels", f"{path}.channels", f"no channel named {name!r}")
        if missing:
            return None
        wanted: dict[str, Any] = {}
        for name in RULE_FIELDS:
            value = node.value.get(name, default(AlertRule, name))
            try:
                wanted[name] = model_field(AlertRule, name).to_python(value)
            except ValidationError as exc:
                for message in exc.messages:
                    self._problem(node, name, f"{path}.{name}", message)
                return None
        wanted["channels"] = sorted(names)
        return wanted

    def _rules_match(
        self, monitor: Monitor, wanted: list[tuple[int, dict[str, Any]]], node: Node, path: str
    ) -> None:
        """Pair the file's rules with the stored ones of the same kind: equal ones
        first, then the rest in threshold order (an edit is an update, which keeps the
        rule's state); what is left over is created, or deleted with ``prune``."""
        stored = sorted(monitor.alert_rules.all(), key=rule_sort_key)
        left = {r.pk: r for r in stored}
        pending = []
        for index, rule in wanted:
            same = next((r for r in left.values() if _rule_state(r) == rule), None)
            if same is not None:
                del left[same.pk]
                self.unchanged += 1
            else:
                pending.append((index, rule))
        for index, rule in pending:
            match = next((r for r in left.values() if r.kind == rule["kind"]), None)
            if match is not None:
                del left[match.pk]
            target = match or AlertRule(monitor=monitor)
            self._rule_save(target, rule, node.child(index), f"{path}.alert_rules[{index}]")
        for leftover in left.values():
            self._leftover("alert rule", _rule_label(monitor, leftover), leftover)

    def _rule_save(self, rule: AlertRule, wanted: dict[str, Any], node: Node, path: str) -> None:
        before = _rule_state(rule) if rule.pk else None
        for name in RULE_FIELDS:
            setattr(rule, name, wanted[name])
        try:
            rule.full_clean()
        except ValidationError as exc:
            self._invalid(exc, node, path)
            return
        rule.save()
        rule.channels.set([self.channels[n] for n in wanted["channels"]])
        label = _rule_label(rule.monitor, rule)
        if before is None:
            self.changes.append(Change("create", "alert rule", label))
        else:
            details = tuple(
                f"{k}: {_plain(before[k])} -> {_plain(wanted[k])}"
                for k in wanted
                if before[k] != wanted[k]
            )
            self.changes.append(Change("update", "alert rule", label, details))

    # --- maintenance windows --------------------------------------------------

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
                f"{k}: {_plain(before[k])} -> {_plain(v)}"
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

    # --- pruning --------------------------------------------------------------

    def _prune(self, sections: dict[str, list[tuple[int, Node]]]) -> None:
        named = {s: {n.value["name"] for _, n in items} for s, items in sections.items()}
        for section, table, what in (
            ("maintenance_windows", self.windows, "maintenance window"),
            ("monitors", self.monitors, "monitor"),
            ("channels", self.channels, "channel"),
        ):
            for name, obj in sorted(table.items()):
                if name not in named[section] and obj is not None:
                    self._leftover(what, name, obj)

    def _leftover(self, what: str, label: str, obj: models.Model) -> None:
        if self.prune:
            obj.delete()
            self.changes.append(Change("delete", what, label))
        else:
            self.kept.append(f"{what} {label!r}")


class _Skip(ValidationError):
    """An object already reported as a problem: nothing more to say about it."""

    def __init__(self) -> None:
        super().__init__({})


def _rule_state(rule: AlertRule) -> dict[str, Any]:
    state = {name: getattr(rule, name) for name in RULE_FIELDS}
    state["channels"] = sorted(c.name for c in rule.channels.all()) if rule.pk else []
    return state


def _rule_label(monitor: Monitor, rule: AlertRule) -> str:
    return f"{monitor.name}: {rule.kind} {rule.threshold}"


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
