"""``manage.py import_uptime_kuma BACKUP.json --owner NAME [--dry-run]``."""

from __future__ import annotations

from configfiles.imports.kuma import KumaFileError, kuma_read
from configfiles.management.commands._importing import ImportCommand
from configfiles.models import ConfigApply


class Command(ImportCommand):
    help = (
        "Import the monitors and notifications of an Uptime Kuma JSON backup; prints what "
        "was imported and what was skipped, and why."
    )
    reader = staticmethod(kuma_read)
    reader_error = KumaFileError
    source = ConfigApply.Source.UPTIME_KUMA
