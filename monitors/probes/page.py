"""What an HTTP check reads from the final page: the keyword and the JSON assertions.

Both HTTP paths ask ``page_checks`` once the final answer's head is in; if it returns
a ``PageChecks``, they feed it the content as it arrives (gzip undone) until it has
what it needs or the content ends, and ``failure`` then gives the verdict. The page is
read only for a final answer with an expected status, to a method with content (not
HEAD), of a monitor with a keyword or JSON assertions.
"""

from __future__ import annotations

from collections.abc import Mapping

from monitors.probes.jsonbody import JsonAssertions
from monitors.probes.keyword import KeywordSearch
from monitors.probes.spec import ProbeSpec
from telemetry.records import FailureKind


class PageChecks:
    """A ``http1.PageReader`` that feeds the keyword search and the JSON assertions of
    one page. ``feed`` returns True once every one of them has what it needs (a
    keyword found early still lets the JSON body be read whole)."""

    __slots__ = ("json", "keyword", "must_appear")

    def __init__(
        self, *, keyword: KeywordSearch | None, must_appear: bool, json: JsonAssertions | None
    ) -> None:
        self.keyword = keyword
        self.must_appear = must_appear
        self.json = json

    def feed(self, data: bytes) -> bool:
        """The page's next bytes (any size); True when no more are needed."""
        done = True
        if self.keyword is not None:
            done = self.keyword.feed(data) and done
        if self.json is not None:
            done = self.json.feed(data) and done
        return done

    def end(self) -> None:
        """The page ended (or reading stopped): decide on what was read."""
        if self.keyword is not None:
            self.keyword.end()
        if self.json is not None:
            self.json.end()

    def failure(self) -> tuple[FailureKind, str] | None:
        """The failure kind and message when the page fails the monitor's keyword rule
        (checked first) or one of its JSON assertions, else None."""
        if self.keyword is not None:
            message = self.keyword.failure(must_appear=self.must_appear)
            if message is not None:
                return FailureKind.KEYWORD, message
        if self.json is not None:
            message = self.json.failure()
            if message is not None:
                return FailureKind.ASSERTION, message
        return None


def page_checks(spec: ProbeSpec, status: int, headers: Mapping[str, str]) -> PageChecks | None:
    """What to look for in this response's page, if anything: a final answer with an
    expected status, to a method with content, of a monitor with a keyword or JSON
    assertions. ``headers`` are the response's (Content-Type says the encoding)."""
    wanted = spec.keyword or spec.json_assertions
    if not wanted or spec.method == "HEAD" or not spec.status_expected(status):
        return None
    content_type = headers.get("content-type")
    max_bytes = spec.max_body_kib * 1024
    return PageChecks(
        keyword=KeywordSearch(spec.keyword, content_type=content_type, max_bytes=max_bytes)
        if spec.keyword
        else None,
        must_appear=spec.keyword_must_appear,
        json=JsonAssertions(spec.json_assertions, content_type=content_type, max_bytes=max_bytes)
        if spec.json_assertions
        else None,
    )
