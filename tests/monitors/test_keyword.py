"""The keyword search on its own: a page fed piece by piece, cut anywhere."""

from __future__ import annotations

from monitors.probes.keyword import KeywordSearch


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
