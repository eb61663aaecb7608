"""``manage.py import_gatus CONFIG.yaml --owner NAME [--dry-run]``."""

from __future__ import annotations

from configfiles.imports.gatus import GatusFileError, gatus_read
from configfiles.management.commands._importing import ImportCommand
from configfiles.models import ConfigApply


class Command(ImportCommand):
    help = (
        "Import the endpoints and alerting of a Gatus configuration file; prints what was "
        "imported and what was skipped, and why."
    )
    reader = staticmethod(gatus_read)
    reader_error = GatusFileError
    source = ConfigApply.Source.GATUS
