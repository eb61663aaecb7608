"""One RabbitMQ user per remote probe region, allowed only what a region's worker does.

Prints the ``rabbitmqctl`` commands (the default), or runs them (``--apply``), or
removes the users (``--delete``). Each region's user may declare nothing, publish only
to the ``results`` exchange, and consume only its own ``probes.<region>`` queue
(``core.regions.region_permissions``); the central site declares every queue.
"""

from __future__ import annotations

import secrets
import shlex
import shutil
import subprocess
from typing import Any
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.regions import LOCAL, region_name_problem, region_permissions

DEFAULT_PREFIX = "sentinel-region-"


class Command(BaseCommand):
    help = (
        "Print (or run with --apply) the rabbitmqctl commands that create one RabbitMQ "
        "user per remote region, limited to consuming its own queue and publishing results."
    )

    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--region",
            action="append",
            default=[],
            help="a region (repeatable); default: every remote one of SENTINEL_REGIONS",
        )
        parser.add_argument("--vhost", help="default: CELERY_BROKER_URL's virtual host")
        parser.add_argument("--prefix", default=DEFAULT_PREFIX, help="user name prefix")
        parser.add_argument("--apply", action="store_true", help="run the commands")
        parser.add_argument("--delete", action="store_true", help="delete the users instead")

    def handle(self, *args: Any, **options: Any) -> None:
        regions = options["region"] or [r for r in settings.SENTINEL_REGIONS if r != LOCAL]
        for region in regions:
            if problem := region_name_problem(region):
                raise CommandError(f"--region: {problem}")
            if region == LOCAL:
                raise CommandError("--region: the local region uses the central site's user")
        if not regions:
            raise CommandError("No remote region: SENTINEL_REGIONS names only 'local'.")
        vhost = options["vhost"] or _vhost(settings.CELERY_BROKER_URL)
        for region in regions:
            user = f"{options['prefix']}{region}"
            commands = (
                [["delete_user", user]]
                if options["delete"]
                else _create_commands(user=user, region=region, vhost=vhost)
            )
            for command in commands:
                if options["apply"]:
                    _run(command, tolerate="already exists" if command[0] == "add_user" else "")
                self.stdout.write(shlex.join(["rabbitmqctl", *command]))


def _create_commands(*, user: str, region: str, vhost: str) -> list[list[str]]:
    configure, write, read = region_permissions(region)
    # Shown once, here: the region's CELERY_BROKER_URL carries it.
    password = secrets.token_urlsafe(24)
    return [
        ["add_user", user, password],
        # A user that existed keeps its name and gets the new password.
        ["change_password", user, password],
        ["set_permissions", "-p", vhost, user, configure, write, read],
    ]


def _vhost(url: str) -> str:
    path = urlsplit(url).path
    return unquote(path[1:]) if len(path) > 1 else "/"


def _run(command: list[str], *, tolerate: str) -> None:
    tool = shutil.which("rabbitmqctl")
    if tool is None:
        raise CommandError("rabbitmqctl is not on PATH: run the printed commands on the broker")
    done = subprocess.run(  # noqa: S603 (a fixed tool, arguments as a list)
        [tool, "-q", *command], capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0 and not (tolerate and tolerate in done.stdout + done.stderr):
        raise CommandError(f"rabbitmqctl {command[0]} failed: {done.stderr.strip()}")
