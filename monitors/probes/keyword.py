"""A monitor's keyword looked for in a page as its bytes arrive, in bounded memory.

Both HTTP paths feed a ``KeywordSearch`` with the page's bytes (after any content
coding such as gzip is undone) and stop reading as soon as it has an answer: the
keyword seen, or the monitor's cap (``max_body_kib``) reached. The page is decoded
incrementally in the encoding a browser would use (``encoding.page_encoding``), so a
multi-byte character cut between two network reads is decoded whole, and the last
``len(keyword) - 1`` characters of each piece are kept and searched again with the
next one, so a keyword cut between two reads is found. Memory stays at one piece of
text plus ``encoding.SNIFF_BYTES`` while the encoding is being chosen, whatever the
page's size.
"""

from __future__ import annotations

import codecs

from monitors.probes.encoding import SNIFF_BYTES, page_encoding


class KeywordSearch:
    """Looks for ``keyword`` in at most ``max_bytes`` of one page.

    Call ``feed`` with each piece of the page (bytes, any size) until it returns True
    or the page ends, then ``end`` (harmless after True). ``found`` then says whether
    the keyword is in the part that was read, and ``truncated`` whether the page went
    on past ``max_bytes`` (so a keyword not found may still be further down).
    """

    __slots__ = (
        "_decoder",
        "_prefix",
        "_read",
        "_tail",
        "content_type",
        "encoding",
        "found",
        "keyword",
        "max_bytes",
        "truncated",
    )

    def __init__(self, keyword: str, *, content_type: str | None, max_bytes: int) -> None:
        self.keyword = keyword
        self.content_type = content_type
        self.max_bytes = max_bytes
        self.found = False
        self.truncated = False
        self.encoding: str | None = None  # the codec, once chosen
        self._read = 0
        self._prefix = bytearray()  # the page's first bytes, until the encoding is chosen
        self._decoder: codecs.IncrementalDecoder | None = None
        self._tail = ""

    def feed(self, data: bytes) -> bool:
        """Take the page's next bytes; True once the answer is known (the keyword was
        seen, or ``max_bytes`` were read and there is more), and reading can stop."""
        if self.found or self.truncated:
            return True
        room = self.max_bytes - self._read
        cut = len(data) > room
        if cut:
            data = data[:room]
        self._read += len(data)
        if self._decoder is not None:
            self._search(self._decoder.decode(data))
        else:
            self._prefix += data
            if len(self._prefix) >= SNIFF_BYTES:
                self._start(complete=False)
        if cut:
            self.truncated = True
            self._finish()
        return self.found or self.truncated

    def end(self) -> None:
        """The page ended: decide on what was read."""
        if not (self.found or self.truncated):
            self._finish()

    def failure(self, *, must_appear: bool) -> str | None:
        """The result's message when the page fails the monitor's keyword rule, else None.

        A keyword that must appear and was not found in a page longer than the cap
        says so, rather than a plain "missing": it may be further down.
        """
        if self.found != must_appear:
            if self.found:
                return f"keyword {self.keyword!r} present"
            if self.truncated:
                return (
                    f"keyword {self.keyword!r} not found in the first "
                    f"{self.max_bytes // 1024} KiB; the page is longer"
                )
            return f"keyword {self.keyword!r} missing"
        return None

    def _start(self, *, complete: bool) -> None:
        prefix = bytes(self._prefix)
        self._prefix = bytearray()
        self.encoding, skip = page_encoding(self.content_type, prefix, complete=complete)
        self._decoder = codecs.getincrementaldecoder(self.encoding)(errors="replace")
        self._search(self._decoder.decode(prefix[skip:]))

    def _finish(self) -> None:
        if self._decoder is None:
            # Cut at the cap, the prefix may end inside a character: not the page's end.
            self._start(complete=not self.truncated)
        assert self._decoder is not None
        self._search(self._decoder.decode(b"", final=True))

    def _search(self, text: str) -> None:
        if self.found or not text:
            return
        window = self._tail + text
        if self.keyword in window:
            self.found = True
            return
        keep = len(self.keyword) - 1
        self._tail = window[max(0, len(window) - keep) :] if keep else ""
