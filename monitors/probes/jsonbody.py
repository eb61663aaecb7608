"""JSON assertions: conditions on an HTTP check's JSON body, all of which must hold.

An assertion is a JMESPath expression (``status.indicator``,
``components[?name=='API'].status | [0]``), an operator and, for all but ``exists``, a
value: ``{"path": "status.indicator", "op": "==", "value": "none"}``. Operators:

- ``==``, ``!=``: JSON equality, without conversions (``"200"`` is not ``200``, ``true``
  is not ``1``; ``1`` is ``1.0``);
- ``<``, ``>``: numbers only; a value that is not a number fails, saying so;
- ``contains``: a substring of a string, an element of a list (JSON equality), or a
  key of an object;
- ``exists``: the path yields something other than null (JMESPath does not tell a
  missing key from a null one).

Both HTTP paths read the body as they read it for a keyword (gzip undone, up to the
monitor's ``max_body_kib``) and feed a ``JsonAssertions``, which keeps it whole (a
JSON document is parsed at once, so memory per check is the body, at most the cap),
decodes it in the encoding the page declares (``encoding.page_encoding``, as for a
keyword) and parses it. A body cut by the cap, or that is not JSON, fails every
assertion, saying so; otherwise the first assertion that does not hold names its path,
what was expected and what came back.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import Any

import jmespath
import jmespath.exceptions
import jmespath.parser
import orjson

from monitors.probes.encoding import SNIFF_BYTES, page_encoding
from monitors.probes.spec import JsonAssertion
from monitors.validators import is_json_number, jmespath_problem

# A value in a failure message is cut to this many characters (the message is kept to
# records.MAX_ERROR_LENGTH, 200).
SHOWN_CHARS = 60


class JsonAssertions:
    """The body of one page, read up to ``max_bytes`` and judged by ``assertions``.

    A ``http1.PageReader``: ``feed`` each piece of the body (bytes, any size) until it
    returns True (the cap was passed) or the body ends, then ``end``; ``failure`` then
    says why the body fails the assertions, or None when all hold.
    """

    __slots__ = ("_body", "assertions", "content_type", "max_bytes", "truncated")

    def __init__(
        self, assertions: Sequence[JsonAssertion], *, content_type: str | None, max_bytes: int
    ) -> None:
        self.assertions = assertions
        self.content_type = content_type
        self.max_bytes = max_bytes
        self.truncated = False
        self._body = bytearray()

    def feed(self, data: bytes) -> bool:
        """Take the body's next bytes; True once it is longer than ``max_bytes`` (what
        follows is not needed: the document cannot be parsed whole)."""
        if self.truncated:
            return True
        room = self.max_bytes - len(self._body)
        if len(data) > room:
            self.truncated = True
            return True
        self._body += data
        return False

    def end(self) -> None:
        """The body ended (nothing to do: ``failure`` parses what was read)."""

    def failure(self) -> str | None:
        """The result's message when the body fails an assertion, else None."""
        if self.truncated:
            return (
                f"the body is longer than {self.max_bytes // 1024} KiB (the page limit), "
                "so its JSON was not read whole"
            )
        try:
            document = parse_json(self._text())
        except ValueError as exc:
            return f"the body is not JSON: {exc}"
        for assertion in self.assertions:
            message = assertion_failure(assertion, document)
            if message is not None:
                return message
        return None

    def _text(self) -> str:
        body = bytes(self._body)
        # Complete only when the sample is the whole body: a guess from a 64 KiB prefix
        # that cuts a character would not be a guess on valid UTF-8.
        sample = body[:SNIFF_BYTES]
        codec, skip = page_encoding(self.content_type, sample, complete=len(body) <= SNIFF_BYTES)
        return body[skip:].decode(codec, errors="replace")


def parse_json(text: str) -> Any:
    """The JSON document ``text`` holds; ``ValueError`` with a short reason if none.

    orjson, the buffer's JSON library: several times faster than the standard
    library's on large bodies. Integers beyond 64 bits come back as floats."""
    if not text.strip():
        raise ValueError("the body is empty")
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ValueError(str(exc)) from None


def assertion_failure(assertion: JsonAssertion, document: Any) -> str | None:
    """Why ``assertion`` does not hold for ``document`` (its path, what was expected and
    what came back), or None when it holds."""
    path, op, expected = assertion
    try:
        expression = _compiled(path)
    except ValueError as exc:  # a stored path that is no expression (checked when saved)
        return f"invalid assertion {path!r}: {exc}"
    try:
        actual = expression.search(document)
    except jmespath.exceptions.JMESPathError as exc:  # e.g. a function given the wrong type
        return f"{path}: {exc}"
    if op == "exists":
        return None if actual is not None else f"{path}: expected to exist, got null"
    held = _holds(op, actual, expected)
    if held is None:
        return f"{path}: cannot compare {shown(actual)} {op} {shown(expected)}"
    if held:
        return None
    wanted = "to contain" if op == "contains" else op
    return f"{path}: expected {wanted} {shown(expected)}, got {shown(actual)}"


def _holds(op: str, actual: Any, expected: Any) -> bool | None:
    """Whether ``actual op expected``; None when the two cannot be compared that way
    (``<`` of a string, ``contains`` in a number, an unknown op)."""
    if op == "==":
        return json_equal(actual, expected)
    if op == "!=":
        return not json_equal(actual, expected)
    if op in ("<", ">"):
        if not (is_json_number(actual) and is_json_number(expected)):
            return None
        return bool(actual < expected) if op == "<" else bool(actual > expected)
    if op == "contains":
        if isinstance(actual, list):
            return any(json_equal(item, expected) for item in actual)
        if isinstance(actual, str | dict) and isinstance(expected, str):
            return expected in actual
    return None


def json_equal(a: Any, b: Any) -> bool:
    """JSON equality: no conversions between types (Python's ``True == 1`` does not
    hold here), numbers by value (``1 == 1.0``), lists in order, objects by keys."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if is_json_number(a) and is_json_number(b):
        return bool(a == b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(json_equal, a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[key], b[key]) for key in a)
    return type(a) is type(b) and bool(a == b)


def shown(value: Any) -> str:
    """``value`` as JSON for a message, cut to SHOWN_CHARS."""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"


@functools.lru_cache(maxsize=1024)
def _compiled(path: str) -> jmespath.parser.ParsedResult:
    """``path`` compiled once per process; ``ValueError`` (with the reason) for one that
    is not an expression a check can evaluate."""
    problem = jmespath_problem(path)
    if problem is not None:
        raise ValueError(problem)
    return jmespath.compile(path)
