"""What the import commands share: read the file, convert, apply, print the report."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from configfiles.apply import ApplyBusyError
from configfiles.document import ConfigFileError
from configfiles.imports import Imported, import_apply
from configfiles.management.commands._owner import owner_argument, scope_of
from configfiles.management.commands.config_apply import read_file


class ImportCommand(BaseCommand):
    reader: Callable[[str], Imported]
    reader_error: type[Exception]
    source: str

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="the file to import, or - for standard input")
        owner_argument(parser)
        parser.add_argument("--dry-run", action="store_true", help="report, import nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        scope = scope_of(options)
        text = read_file(options["file"])
        try:
            imported = type(self).reader(text)
            report = import_apply(
                scope=scope, imported=imported, source=self.source, dry_run=options["dry_run"]
            )
        except (self.reader_error, ConfigFileError, ApplyBusyError) as exc:
            raise CommandError(f"{options['file']}: nothing was imported: {exc}") from exc
        for line in report.lines():
            self.stdout.write(line)
