"""Make an owner's objects match a configuration file (``config_apply``).

Objects are matched by name (a channel, monitor or maintenance window) and alert rules
by kind within their monitor. Every object is validated by its model's own ``clean()``
(the monitor services for monitors), so a file is refused for the same reasons as the
admin, the dashboard form and the API; every error is collected with its line, and
one error rolls the whole apply back. A dry run is the same apply, rolled back.
"""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction

from configfiles.apply.channels import ChannelSteps
from configfiles.apply.monitors import MonitorSteps
from configfiles.apply.report import ApplyReport, Change
from configfiles.apply.rules import RuleSteps
from configfiles.apply.windows import WindowSteps
from configfiles.document import ConfigFileError, Node, parse
from configfiles.models import ConfigApply
from configfiles.scope import Scope
from core.db import named_lock

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
        applier = Applier(scope=scope, prune=prune)
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


class Applier(ChannelSteps, MonitorSteps, RuleSteps, WindowSteps):
    """One apply: walks the document in dependency order (tags, channels, monitors,
    their rules, windows, then pruning), collecting changes and problems."""

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


__all__ = ["ApplyBusyError", "ApplyReport", "Change", "config_apply"]
