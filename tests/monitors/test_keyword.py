"""Keywords in large pages: looked for across the whole page up to the monitor's cap,
as the bytes arrive, on both HTTP paths; and the search on its own, piece by piece."""

from __future__ import annotations

import asyncio
import datetime as dt
from urllib.parse import urlencode

import pytest

from monitors.probes import ProbeSpec, check_batch
from monitors.probes.keyword import KeywordSearch
from telemetry.records import FailureKind

KIB = 1024


def check(url, *, policy, **fields):
    spec = ProbeSpec(monitor_id=1, kind="http", url=url, timeout_seconds=5, **fields)
    [result] = asyncio.run(check_batch([(spec, dt.datetime.now(dt.UTC))], policy=policy))
    return result


def long_page(target, *, size, at, word, split=None):
    query = {"size": size, "at": at, "word": word}
    if split is not None:
        query["split"] = split
    return target.url(f"/long?{urlencode(query)}")


@pytest.mark.usefixtures("http_path")
class TestLargePages:
    def test_a_keyword_at_300_kib_is_found(self, target, loopback_policy):
        url = long_page(target, size=400 * KIB, at=300 * KIB, word="needle")

        result = check(url, policy=loopback_policy, keyword="needle")

        assert result.ok, result.error

    def test_a_keyword_past_the_cap_is_reported_with_the_cap(self, target, loopback_policy):
        url = long_page(target, size=400 * KIB, at=300 * KIB, word="needle")

        result = check(url, policy=loopback_policy, keyword="needle", max_body_kib=256)

        assert result.failure == FailureKind.KEYWORD
        assert result.error == "keyword 'needle' not found in the first 256 KiB; the page is longer"

    def test_the_default_cap_stops_a_huge_page(self, target, loopback_policy):
        # "needle" sits after 13 MB; the default cap (1 MiB) stops the read long before.
        result = check(target.url("/big"), policy=loopback_policy, keyword="needle")

        assert (
            result.error == "keyword 'needle' not found in the first 1024 KiB; the page is longer"
        )

    def test_a_keyword_missing_from_a_page_shorter_than_the_cap_is_missing(
        self, target, loopback_policy
    ):
        url = long_page(target, size=100 * KIB, at=0, word="hay")

        result = check(url, policy=loopback_policy, keyword="needle", max_body_kib=100)

        assert result.error == "keyword 'needle' missing"

    def test_a_forbidden_word_past_256_kib_is_found(self, target, loopback_policy):
        url = long_page(target, size=600 * KIB, at=500 * KIB, word="maintenance")

        result = check(
            url, policy=loopback_policy, keyword="maintenance", keyword_must_appear=False
        )

        assert result.failure == FailureKind.KEYWORD
        assert result.error == "keyword 'maintenance' present"

    def test_a_forbidden_word_past_the_cap_is_not_seen(self, target, loopback_policy):
        url = long_page(target, size=600 * KIB, at=500 * KIB, word="maintenance")

        result = check(
            url,
            policy=loopback_policy,
            keyword="maintenance",
            keyword_must_appear=False,
            max_body_kib=256,
        )

        assert result.ok

    def test_a_keyword_cut_between_two_reads_is_found(self, target, loopback_policy):
        at = 200 * KIB + 7
        url = long_page(target, size=300 * KIB, at=at, word="operational", split=at + 4)

        result = check(url, policy=loopback_policy, keyword="operational")

        assert result.ok, result.error

    def test_a_multibyte_keyword_cut_inside_a_character_is_found(self, target, loopback_policy):
        at = 200 * KIB + 3
        # "稼働中" is 9 bytes of UTF-8; the reads end after the second byte of "働".
        url = long_page(target, size=300 * KIB, at=at, word="稼働中", split=at + 5)

        result = check(url, policy=loopback_policy, keyword="稼働中")

        assert result.ok, result.error


class TestKeywordSearch:
    def search(self, pieces, keyword, *, max_bytes=1 << 20, content_type="text/html"):
        search = KeywordSearch(keyword, content_type=content_type, max_bytes=max_bytes)
        for piece in pieces:
            if search.feed(piece):
                break
        search.end()
        return search

    def test_every_cut_of_a_keyword_between_pieces_is_found(self):
        page = ("x" * 70_000 + "所有系统运行正常" + "y" * 100).encode("gb18030")
        start = 70_000

        for cut in range(start, start + 17):
            pieces = [page[:cut], page[cut:]]
            found = self.search(pieces, "系统运行", content_type="text/html; charset=gbk").found
            assert found, cut

    def test_one_byte_pieces_find_a_multibyte_keyword(self):
        page = ("<p>" + "é" * 40_000 + "稼働中</p>").encode()

        search = self.search([page[i : i + 1] for i in range(len(page))], "稼働中")

        assert search.found and search.encoding == "utf-8"

    def test_it_stops_at_the_cap_and_says_the_page_is_longer(self):
        search = self.search([b"x" * 4096] * 10, "needle", max_bytes=10_000)

        assert not search.found and search.truncated
        assert search.failure(must_appear=True) == (
            "keyword 'needle' not found in the first 9 KiB; the page is longer"
        )
        assert search.failure(must_appear=False) is None

    def test_a_cap_inside_a_character_does_not_spoil_the_encoding_guess(self):
        page = ("<p>" + "稼働中" * 1000).encode()  # no charset anywhere: sniffed
        cap = 1024  # byte 1024 is inside a 3-byte character

        search = self.search([page], "稼働中", max_bytes=cap, content_type="text/html")

        assert search.encoding == "utf-8" and search.found and search.truncated

    def test_a_page_exactly_as_long_as_the_cap_is_not_longer(self):
        search = self.search([b"x" * 4096] * 2, "needle", max_bytes=8192)

        assert not search.truncated
        assert search.failure(must_appear=True) == "keyword 'needle' missing"

    def test_a_keyword_in_the_last_bytes_under_the_cap_counts(self):
        search = self.search([b"x" * 9994 + b"needle" + b"x" * 100], "needle", max_bytes=10_000)

        assert search.found

    def test_the_kept_tail_is_bounded(self):
        search = KeywordSearch("needle", content_type="text/plain", max_bytes=1 << 30)
        for _ in range(100):
            search.feed(b"x" * 65536)

        assert len(search._tail) == len("needle") - 1
