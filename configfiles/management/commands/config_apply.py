"""``manage.py config_apply FILE --owner NAME [--dry-run] [--prune]``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from configfiles.apply import ApplyBusyError, config_apply
from configfiles.document import ConfigFileError
from configfiles.management.commands._owner import owner_argument, scope_of


class Command(BaseCommand):
    help = (
        "Make an owner's objects match a YAML or JSON configuration file: create and update "
        "what it names, delete what it does not with --prune. All or nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="the file, or - for standard input")
        owner_argument(parser)
        parser.add_argument("--dry-run", action="store_true", help="print the changes, make none")
        parser.add_argument(
            "--prune", action="store_true", help="delete what the file does not name"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        scope = scope_of(options)
        text = read_file(options["file"])
        try:
            report = config_apply(
                scope=scope, text=text, prune=options["prune"], dry_run=options["dry_run"]
            )
        except ConfigFileError as exc:
            raise CommandError(f"{options['file']}: nothing was changed:\n{exc}") from exc
        except ApplyBusyError as exc:
            raise CommandError(f"{options['file']}: nothing was changed: {exc}") from exc
        for line in report.lines():
            self.stdout.write(line)


def read_file(name: str) -> str:
    """The text of a file named on the command line (``-``: standard input)."""
    if name == "-":
        return sys.stdin.read()
    try:
        return Path(name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"{name}: {exc}") from exc
