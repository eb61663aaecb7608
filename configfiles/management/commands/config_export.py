"""``manage.py config_export --owner NAME [--json] [-o FILE]``: an owner's configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from configfiles.document import ConfigFileError, dump
from configfiles.export import config_export
from configfiles.management.commands._owner import owner_argument, scope_of


class Command(BaseCommand):
    help = (
        "Write an owner's monitors, tags, alert rules, channels and maintenance windows "
        "as YAML or JSON."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        owner_argument(parser)
        parser.add_argument("--json", action="store_true", help="JSON instead of YAML")
        parser.add_argument("-o", "--output", help="file to write (default: standard output)")

    def handle(self, *args: Any, **options: Any) -> None:
        scope = scope_of(options)
        try:
            document = config_export(scope=scope)
        except ConfigFileError as exc:
            raise CommandError(f"cannot export {scope}:\n{exc}") from exc
        text = dump(document, syntax="json" if options["json"] else "yaml")
        if options["output"]:
            Path(options["output"]).write_text(text, encoding="utf-8")
        else:
            self.stdout.write(text, ending="")
