"""Alert rules in a file: matched by kind within their monitor."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from alerting.models import AlertRule
from configfiles.apply.report import Change, plain
from configfiles.apply.steps import Steps
from configfiles.document import Node
from configfiles.export import rule_sort_key
from configfiles.fields import RULE_FIELDS, RULE_KEYS, default, model_field
from monitors.models import Monitor


class RuleSteps(Steps):
    """Make each named monitor's alert rules match its entry."""

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
                f"{k}: {plain(before[k])} -> {plain(wanted[k])}"
                for k in wanted
                if before[k] != wanted[k]
            )
            self.changes.append(Change("update", "alert rule", label, details))


def _rule_state(rule: AlertRule) -> dict[str, Any]:
    state = {name: getattr(rule, name) for name in RULE_FIELDS}
    state["channels"] = sorted(c.name for c in rule.channels.all()) if rule.pk else []
    return state


def _rule_label(monitor: Monitor, rule: AlertRule) -> str:
    return f"{monitor.name}: {rule.kind} {rule.threshold}"
