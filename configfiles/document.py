"""Reading and writing configuration files: YAML or JSON text <-> a document.

A document is plain data (dicts, lists, strings, numbers, booleans, None). Files are
read with ruamel.yaml, which keeps the line of every key and list item, so an error
names the line in the file; JSON is read by the same parser (JSON is YAML 1.2).
"""

from __future__ import annotations

import datetime as dt
import io
import json
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError

FORMAT_VERSION = 1
# The most keys and items a file may hold. YAML aliases make a small file stand for a
# huge document ("billion laughs"); converting one stops here instead of eating memory.
MAX_NODES = 200_000


@dataclass(frozen=True)
class Problem:
    """One error in a file: its 1-based line (None when not known), where in the
    document (``monitors[2].interval_seconds``) and what is wrong."""

    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.path}: {self.message}" if self.path else f"{where}{self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "path": self.path, "message": self.message}


class ConfigFileError(Exception):
    """A file that cannot be applied; ``problems`` lists every error found."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


@dataclass
class Node:
    """A mapping or list of the file with its lines: ``value`` is plain data,
    ``line`` the 1-based line it starts on, ``lines`` the line of each key or index."""

    value: Any
    line: int | None = None
    lines: dict[Any, int] = field(default_factory=dict)
    children: dict[Any, Node] = field(default_factory=dict)

    def line_of(self, key: Any) -> int | None:
        return self.lines.get(key, self.line)

    def child(self, key: Any) -> Node:
        return self.children.get(key) or Node(value=None, line=self.line_of(key))


def parse(text: str) -> Node:
    """Parse YAML or JSON ``text`` into a ``Node`` tree; raises ``ConfigFileError`` with
    the line of a syntax error, or when the top level is not a mapping."""
    try:
        loaded = YAML(typ="rt", pure=True).load(text)
        node = _node(loaded, 1, [MAX_NODES])
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise ConfigFileError(
            [Problem(line, "", f"not valid YAML or JSON: {exc.problem}")]
        ) from exc
    except RecursionError as exc:
        raise ConfigFileError([Problem(None, "", "the file is nested too deeply")]) from exc
    if not isinstance(node.value, dict):
        raise ConfigFileError([Problem(1, "", "the file must be a mapping (version, monitors, …)")])
    return node


def node_from_plain(value: Any) -> Node:
    """A ``Node`` for a document built in code (an import): no lines."""
    node = Node(value=value)
    if isinstance(value, dict):
        node.children = {k: node_from_plain(v) for k, v in value.items()}
    elif isinstance(value, list):
        node.children = {i: node_from_plain(v) for i, v in enumerate(value)}
    return node


def _node(value: Any, line: int | None, budget: list[int]) -> Node:
    budget[0] -= 1
    if budget[0] < 0:
        raise ConfigFileError([Problem(line, "", f"more than {MAX_NODES} keys and items")])
    lc = getattr(value, "lc", None)
    start = lc.line + 1 if lc is not None and lc.line is not None else line
    if isinstance(value, dict):
        lines = {k: lc.key(k)[0] + 1 for k in value} if lc is not None else {}
        children = {k: _node(v, lines.get(k, start), budget) for k, v in value.items()}
        plain = {str(k): c.value for k, c in children.items()}
        return Node(plain, start, {str(k): n for k, n in lines.items()}, _str_keys(children))
    if isinstance(value, list):
        lines = {i: lc.item(i)[0] + 1 for i in range(len(value))} if lc is not None else {}
        children = {i: _node(v, lines.get(i, start), budget) for i, v in enumerate(value)}
        return Node([c.value for c in children.values()], start, lines, dict(children))
    return Node(_scalar(value), line)


def _str_keys(children: dict[Any, Node]) -> dict[Any, Node]:
    return {str(k): v for k, v in children.items()}


def _scalar(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return dt.datetime.fromisoformat(value.isoformat())
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        return str(value)  # ruamel's quoted-string subclasses
    return value


def dump(document: dict[str, Any], *, syntax: str) -> str:
    """The document as ``"yaml"`` or ``"json"`` text, keys in the document's order."""
    if syntax == "json":
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    yaml = YAML(typ="rt", pure=True)
    yaml.default_flow_style = False
    yaml.width = 4096  # a long URL stays on one line
    out = io.StringIO()
    yaml.dump(document, out)
    return out.getvalue()
