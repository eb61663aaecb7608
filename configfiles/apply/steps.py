"""The base of an apply's steps: lookups, problems, tags, secrets, leftovers."""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models

from configfiles.apply.report import Change
from configfiles.document import FORMAT_VERSION, Node, Problem
from configfiles.fields import TOP_KEYS
from configfiles.scope import Scope
from monitors.models import Tag


class Steps:
    """The state of one apply and what every step uses: the scope's objects by name,
    the problems found (with their lines), the changes made, the tags."""

    def __init__(self, *, scope: Scope, prune: bool) -> None:
        self.scope = scope
        self.prune = prune
        self.problems: list[Problem] = []
        self.changes: list[Change] = []
        self.unchanged = 0
        self.kept: list[str] = []
        self.tags: dict[str, Tag] = {}  # looked up or created once per apply
        self.channels = self._existing(scope.channels())
        # Everything compared for an unchanged monitor, in four queries for them all.
        self.monitors = self._existing(
            scope.monitors()
            .select_related("alerting")
            .prefetch_related("tags", "alert_rules__channels")
        )
        self.windows = self._existing(scope.windows())

    def _guard(self, step: Callable[[Node, str], None], node: Node, path: str) -> None:
        try:
            step(node, f'{path} "{node.value["name"]}"')
        except ValidationError as exc:
            self._invalid(exc, node, f'{path} "{node.value["name"]}"')

    def _problem(self, node: Node, key: Any, path: str, message: str) -> None:
        line = node.line_of(key) if key is not None else node.line
        self.problems.append(Problem(line, path, message))

    def _invalid(self, exc: ValidationError, node: Node, path: str) -> None:
        """A model's ValidationError as problems on the lines of the fields it names."""
        errors = dict(exc.message_dict) if hasattr(exc, "error_dict") else {"": exc.messages}
        for key, messages in errors.items():
            where = f"{path}.{key}" if key and key != "__all__" else path
            for message in messages:
                self._problem(node, key if key in node.lines else None, where, message)

    def _check_top(self, root: Node) -> None:
        for key in root.value:
            if key not in TOP_KEYS:
                known = ", ".join(sorted(TOP_KEYS))
                self._problem(root, key, key, f"unknown section (known: {known})")
        if root.value.get("version") != FORMAT_VERSION:
            self._problem(root, "version", "version", f"must be {FORMAT_VERSION}")

    def _items(self, root: Node, section: str) -> list[tuple[int, Node]]:
        """The named mappings of a section, each checked for a unique, non-empty name."""
        node = root.child(section)
        if node.value is None:
            return []
        if not isinstance(node.value, list):
            self._problem(root, section, section, "must be a list")
            return []
        items, seen = [], set()
        for index, item in enumerate(node.value):
            path = f"{section}[{index}]"
            child = node.child(index)
            name = item.get("name") if isinstance(item, dict) else None
            if not isinstance(item, dict):
                self._problem(node, index, path, "must be a mapping with a name")
            elif not isinstance(name, str) or not name.strip():
                self._problem(child, "name", f"{path}.name", "a non-empty name is required")
            elif name in seen:
                self._problem(child, "name", f"{path}.name", f"{name!r} is named twice in the file")
            else:
                seen.add(name)
                items.append((index, child))
        return items

    def _existing(self, queryset: models.QuerySet[Any]) -> dict[str, Any]:
        """The scope's objects by name; a name two of them share maps to None (ambiguous)."""
        found: dict[str, Any] = {}
        for obj in queryset:
            found[obj.name] = None if obj.name in found else obj
        return found

    def _lookup(self, table: dict[str, Any], node: Node, path: str, what: str) -> Any:
        name = node.value["name"]
        if name in table and table[name] is None:
            self._problem(
                node,
                "name",
                f"{path}.name",
                f"more than one existing {what} is named {name!r}; rename all but one first",
            )
            raise _Skip
        return table.get(name)

    def _unknown_keys(self, node: Node, path: str, known: frozenset[str]) -> bool:
        bad = [k for k in node.value if k not in known]
        for key in bad:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            self._problem(node, key, f"{path}.{key}", f"unknown field{hint}")
        return bool(bad)

    def _names(self, node: Node, key: str, path: str) -> list[str] | None:
        value = node.value.get(key, [])
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self._problem(node, key, f"{path}.{key}", "must be a list of names")
            return None
        return value

    def _tags(self, node: Node) -> None:
        names = node.value or []
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            self.problems.append(Problem(node.line, "tags", "must be a list of tag names"))
            return
        for index, name in enumerate(names):
            self._tag_ensure(name.strip().lower(), node, index, f"tags[{index}]")

    def _tag_ensure(self, name: str, node: Node, key: Any, path: str) -> Tag | None:
        if name in self.tags:
            return self.tags[name]
        try:
            Tag(name=name).clean_fields()
        except ValidationError as exc:
            for message in exc.message_dict.get("name", exc.messages):
                self._problem(node, key, path, f"tag {name!r}: {message}")
            return None
        tag, created = Tag.objects.get_or_create(name=name)
        if created:
            self.changes.append(Change("create", "tag", name))
        self.tags[name] = tag
        return tag

    def _secret(
        self, value: Any, stored: Any, node: Node, key: str, where: str
    ) -> tuple[bool, Any]:
        """(ok, value) of a value that may be a reference, ``{"env": NAME}``: the
        variable's value where it is set, else the stored value (an apply never wipes a
        secret it does not set), else a problem. Any other value is itself."""
        if not isinstance(value, dict):
            return True, value
        env = value.get("env")
        if set(value) != {"env"} or not isinstance(env, str):
            self._problem(node, key, where, "a secret is a string or {env: NAME}")
            return False, None
        found = os.environ.get(env)
        if found is not None:
            return True, found
        if stored is not None:
            return True, stored
        self._problem(
            node, key, where, f"the environment variable {env} is not set and no value is stored"
        )
        return False, None

    def _leftover(self, what: str, label: str, obj: models.Model) -> None:
        if self.prune:
            obj.delete()
            self.changes.append(Change("delete", what, label))
        else:
            self.kept.append(f"{what} {label!r}")


class _Skip(ValidationError):
    """An object already reported as a problem: nothing more to say about it."""

    def __init__(self) -> None:
        super().__init__({})
