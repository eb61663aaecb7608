"""Imports from other monitoring tools: each reader turns the tool's file into a
configuration document plus what it skipped and why; ``import_apply`` validates each
object on its own (one the models refuse is skipped, with the reason) and applies the
rest like a configuration file, without pruning."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError

from alerting.models import NotificationChannel
from configfiles.apply import ApplyReport, config_apply
from configfiles.document import FORMAT_VERSION, node_from_plain
from configfiles.fields import MONITOR_FIELDS
from configfiles.scope import Scope
from monitors.models import Monitor


@dataclass
class Imported:
    """What a reader made of a file: the objects, and the notes and skips to report."""

    monitors: list[dict[str, Any]] = field(default_factory=list)
    channels: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "monitor 'x': why"
    notes: list[str] = field(default_factory=list)  # imported, but changed on the way

    def skip(self, what: str, name: str, why: str) -> None:
        self.skipped.append(f"{what} {name!r}: {why}")

    def note(self, what: str, name: str, text: str) -> None:
        self.notes.append(f"{what} {name!r}: {text}")

    def unique_name(self, name: str, taken: set[str]) -> str:
        """``name``, or ``name (2)``... when the source has two of one name (ours are keys)."""
        candidate, n = name, 1
        while candidate in taken:
            n += 1
            candidate = f"{name} ({n})"
        taken.add(candidate)
        return candidate


@dataclass
class ImportReport:
    applied: ApplyReport
    skipped: list[str]
    notes: list[str]

    def lines(self) -> list[str]:
        out = [*self.applied.lines()]
        out += [f"note: {n}" for n in self.notes]
        out += [f"skipped: {s}" for s in self.skipped]
        out.append(f"{len(self.skipped)} skipped")
        return out


def import_apply(
    *, scope: Scope, imported: Imported, source: str, dry_run: bool = False
) -> ImportReport:
    """Validate each imported channel and monitor with its model (skipping, with the
    reason, what it refuses), then apply the rest to ``scope`` in one transaction."""
    channels = [c for c in imported.channels if _valid_channel(c, imported)]
    names = {c["name"] for c in channels}
    monitors = [m for m in imported.monitors if _valid_monitor(m, imported, names)]
    tags = sorted({t for m in monitors for t in m.get("tags", [])})
    document = {"version": FORMAT_VERSION, "tags": tags, "channels": channels, "monitors": monitors}
    report = config_apply(
        scope=scope, document=node_from_plain(document), dry_run=dry_run, source=source
    )
    return ImportReport(applied=report, skipped=imported.skipped, notes=imported.notes)


def _valid_channel(entry: dict[str, Any], imported: Imported) -> bool:
    channel = NotificationChannel(name=entry["name"], kind=entry["kind"], config=entry["config"])
    return _valid(channel, "channel", entry["name"], imported, exclude=["owner", "project"])


def _valid_monitor(entry: dict[str, Any], imported: Imported, channels: set[str]) -> bool:
    fields = {k: v for k, v in entry.items() if k in (*MONITOR_FIELDS, "enabled")}
    if not _valid(
        Monitor(name=entry["name"], **fields),
        "monitor",
        entry["name"],
        imported,
        exclude=["owner", "project"],
    ):
        return False
    for rule in entry.get("alert_rules", []):
        missing = [c for c in rule.get("channels", []) if c not in channels]
        if missing:
            imported.note("monitor", entry["name"], f"alert channels {missing} were skipped")
            rule["channels"] = [c for c in rule["channels"] if c in channels]
    return True


def _valid(obj: Any, what: str, name: str, imported: Imported, *, exclude: list[str]) -> bool:
    try:
        obj.full_clean(exclude=exclude)
    except ValidationError as exc:
        reasons = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
        imported.skip(what, name, f"refused by validation ({reasons})")
        return False
    return True
