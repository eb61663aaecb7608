"""Strict readers for settings that come from the environment.

django-environ parses URLs well but reads booleans loosely ("ture" is quietly
False). An uptime service that silently ignores ``SENTINEL_ALLOW_PRIVATE_TARGETS=ture``
or ``DEBUG=flase`` is a security bug, so booleans and integers are parsed here and
any value we cannot read stops start-up with one line naming the variable.

Every reader also accepts ``NAME_FILE``: a path whose contents (stripped) are the
value, the usual way Docker and Kubernetes hand secrets to a process.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Mapping
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


class Env:
    """Reads typed values from a mapping (``os.environ`` by default)."""

    def __init__(self, environ: Mapping[builtins.str, builtins.str] | None = None) -> None:
        self.environ = os.environ if environ is None else environ

    def raw(self, name: builtins.str) -> builtins.str | None:
        """The value of ``name``, or of the file named by ``name_FILE``, or None."""
        file_name = self.environ.get(f"{name}_FILE")
        if name in self.environ and file_name:
            raise ImproperlyConfigured(f"Set {name} or {name}_FILE, not both.")
        if file_name:
            try:
                return Path(file_name).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ImproperlyConfigured(
                    f"{name}_FILE={file_name} cannot be read: {exc.strerror}."
                ) from exc
        return self.environ.get(name)

    def str(self, name: builtins.str, default: builtins.str) -> builtins.str:
        value = self.raw(name)
        return default if value is None else value

    def bool(self, name: builtins.str, default: builtins.bool) -> builtins.bool:
        value = self.raw(name)
        if value is None or value.strip() == "":
            return default
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise ImproperlyConfigured(
            f"{name}={value!r} is not a boolean; use one of true/false, yes/no, on/off, 1/0."
        )

    def int(
        self,
        name: builtins.str,
        default: builtins.int,
        *,
        minimum: builtins.int,
        maximum: builtins.int,
    ) -> builtins.int:
        value = self.raw(name)
        if value is None or value.strip() == "":
            return default
        try:
            number = int(value.strip())
        except ValueError:
            raise ImproperlyConfigured(f"{name}={value!r} is not a whole number.") from None
        if not minimum <= number <= maximum:
            raise ImproperlyConfigured(
                f"{name}={number} is out of range; it must be between {minimum} and {maximum}."
            )
        return number

    def choice(
        self, name: builtins.str, default: builtins.str, *, choices: tuple[builtins.str, ...]
    ) -> builtins.str:
        value = self.raw(name)
        if value is None or value.strip() == "":
            return default
        if value.strip() not in choices:
            raise ImproperlyConfigured(f"{name}={value!r} is not one of {', '.join(choices)}.")
        return value.strip()

    def list(
        self, name: builtins.str, default: builtins.list[builtins.str]
    ) -> builtins.list[builtins.str]:
        value = self.raw(name)
        if value is None:
            return list(default)
        return [item.strip() for item in value.split(",") if item.strip()]
