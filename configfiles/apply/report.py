"""What an apply changed: each change, and the report of them all."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


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


def plain(value: Any) -> str:
    return repr(value) if not isinstance(value, str) else repr(value[:80])
