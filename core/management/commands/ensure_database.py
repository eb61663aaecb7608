from __future__ import annotations

from typing import Any

import MySQLdb
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from core.reachability import service_down_line


class Command(BaseCommand):
    help = "Create the configured MySQL/MariaDB database if it does not exist yet."

    requires_system_checks: list[str] = []

    def handle(self, *args: Any, **options: Any) -> None:
        db = settings.DATABASES["default"]
        try:
            # Connect without a database: the one we want may not exist yet.
            conn = MySQLdb.connect(
                host=db["HOST"] or "127.0.0.1",
                port=int(db["PORT"] or 3306),
                user=db["USER"],
                password=db["PASSWORD"],
                connect_timeout=5,
            )
        except MySQLdb.OperationalError as exc:
            raise CommandError(service_down_line("database", exc)) from None
        name = db["NAME"].replace("`", "``")
        with conn.cursor() as cursor:
            created = cursor.execute(
                f"CREATE DATABASE IF NOT EXISTS `{name}` "
                "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )
        conn.close()
        self.stdout.write(f"Database {db['NAME']} {'created' if created else 'exists'}.")
