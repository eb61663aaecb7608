"""Where a redirect goes: one resolution of a ``Location`` for both HTTP paths.

A check must land where a browser lands, or it reports a page that does not exist
(a 404, DOWN) while the site works. The lean path (http1.py) and aiohttp's path both
hand the header to ``resolve_location``; what each does before that is only to decode
the header's bytes the same way (UTF-8, with undecodable bytes kept as surrogates,
which is how aiohttp's parser decodes every header value).
"""

from __future__ import annotations

import re

from yarl import URL

# WHATWG URL Standard, "percent-encode sets" (https://url.spec.whatwg.org/#percent-encoded-bytes):
# beyond C0 controls, space, DEL and every non-ASCII byte, which all sets encode.
_PATH_EXTRA = frozenset(b'"#<>?`{}')
_QUERY_EXTRA = frozenset(b"\"#<>'")  # the special-query set (http and https are special)
# "scheme://authority" or "//authority" at the start of a reference: the host is not
# percent-encoded but IDNA-encoded, which yarl does.
_AUTHORITY_PREFIX = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.\-]*:)?//[^/?#]*")
# The URL parser strips leading and trailing C0 controls and spaces and removes every
# tab and newline (WHATWG URL Standard, basic URL parser, first steps).
_C0_AND_SPACE = "".join(chr(code) for code in range(0x21))
_TAB_AND_NEWLINES = str.maketrans("", "", "\t\n\r")


def resolve_location(current: URL, location: str) -> URL:
    """The URL a browser requests after a redirect from ``current`` to ``location``.

    ``location`` is the ``Location`` header as text: its bytes decoded as UTF-8 with
    ``surrogateescape`` (so a byte that is not UTF-8 stays itself). The reference is
    resolved against ``current`` by RFC 3986 §5.2 (absolute, scheme-relative
    ``//host/x``, ``/x``, ``x``, ``../x``, query-only ``?q``); before that it is
    percent-encoded as the WHATWG URL Standard does: non-ASCII characters as their UTF-8
    bytes, raw undecodable bytes as themselves, spaces and the path and query sets'
    characters as ``%XX``, and existing ``%XX`` (or a lone ``%``) left alone, so an
    already-encoded target is not encoded twice. The fragment is dropped: it is never
    sent. Returns an encoded ``yarl.URL``; the caller judges its scheme. Raises
    ``ValueError`` (from yarl) for a reference that is not a URL at all, such as a bad port.
    """
    text = location.strip(_C0_AND_SPACE).translate(_TAB_AND_NEWLINES)
    text = text.partition("#")[0]
    authority = _AUTHORITY_PREFIX.match(text)
    head = authority.group() if authority else ""
    path, question, query = text[len(head) :].partition("?")
    if not head.isascii():
        head = str(URL(head))  # IDNA for an internationalised host name
    reference = head + _percent_encode(path, _PATH_EXTRA)
    reference += question + _percent_encode(query, _QUERY_EXTRA)
    return current.join(URL(reference, encoded=True)).with_fragment(None)


def _percent_encode(text: str, extra: frozenset[int]) -> str:
    """``text`` with every byte outside printable ASCII, and those in ``extra``, as %XX."""
    return "".join(
        f"%{byte:02X}" if byte <= 0x20 or byte >= 0x7F or byte in extra else chr(byte)
        for byte in text.encode("utf-8", "surrogateescape")
    )
