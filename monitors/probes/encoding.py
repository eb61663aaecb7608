"""The text encoding of a page, chosen the way a browser chooses it.

A keyword typed in the monitor's form is text; the page is bytes. Decoding a GBK,
Shift-JIS or Windows-1251 page as UTF-8 turns the keyword into replacement characters,
so a page that shows the word in every browser was reported without it (and a
forbidden word present on it, absent). Browsers decide by the HTML Standard's
"encoding sniffing algorithm" (https://html.spec.whatwg.org/#encoding-sniffing-algorithm),
in this order:

1. a byte-order mark (it beats everything, the Content-Type header included);
2. the ``charset`` of the Content-Type header (it beats what the document says);
3. what the document declares in its first bytes: ``<meta charset=…>``,
   ``<meta http-equiv="Content-Type" content="…; charset=…">`` or an XML declaration;
4. a guess from the bytes themselves (Chromium and Firefox run a detector).

Labels map to encodings as the WHATWG Encoding Standard says (``latin1``/``ascii`` →
windows-1252, ``gb2312``/``gbk`` → gb18030, ``shift_jis`` → windows-31j, …).

Why w3lib: steps 1 to 3 and the label table are its ``html_to_unicode`` (Scrapy's
encoding handling, maintained for over a decade, no dependencies). We use its parts
rather than ``html_to_unicode`` itself because that decodes the whole body at once,
and a check decodes as the bytes arrive (``keyword.KeywordSearch``). Why
charset-normalizer for step 4: it is the detector requests uses (already installed
with it), maintained, pure Python with optional speedups, and it ranks candidates
by how plausible the decoded text is, which tells Windows-1251 from KOI8-R and GBK
from Big5 on a few kilobytes of text.
"""

from __future__ import annotations

import codecs

import charset_normalizer
from w3lib.encoding import (
    html_body_declared_encoding,
    http_content_type_encoding,
    read_bom,
    resolve_encoding,
)

# How much of a page the choice looks at when nothing declares the encoding (the
# detector's sample). The declarations themselves are looked for in the first 4 KiB.
SNIFF_BYTES = 64 * 1024
# The detector is the slow part (milliseconds per kilobytes of non-UTF-8 text): it
# sees at most this much.
DETECT_BYTES = 16 * 1024
# When nothing at all can be said: the HTML Standard's default for most locales.
FALLBACK_ENCODING = "cp1252"


def page_encoding(content_type: str | None, prefix: bytes, *, complete: bool) -> tuple[str, int]:
    """The Python codec that decodes a page, and how many BOM bytes to skip first.

    ``content_type`` is the response's Content-Type header (or None); ``prefix`` the
    first bytes of the page (at least ``SNIFF_BYTES`` of it, or all of it when
    ``complete``), after any content coding (gzip) is undone. Never raises: an unknown
    label is skipped, as browsers skip it.
    """
    bom_encoding, bom = read_bom(prefix)
    if bom_encoding is not None and bom is not None:
        return bom_encoding, len(bom)
    header = http_content_type_encoding(content_type)
    if header is not None:
        # WHATWG: the "utf-16" label is UTF-16LE.
        return ("utf-16-le" if header == "utf-16" else header), 0
    declared = html_body_declared_encoding(prefix)
    if declared is not None:
        # HTML Standard, prescan: a document that could declare UTF-16 in ASCII bytes
        # is not UTF-16; it is read as UTF-8.
        return ("utf-8" if declared.startswith("utf-16") else declared), 0
    return sniff_encoding(prefix, complete=complete), 0


def sniff_encoding(prefix: bytes, *, complete: bool) -> str:
    """The encoding of undeclared bytes: UTF-8 when they are valid UTF-8 (ASCII too),
    else charset-normalizer's best guess mapped through the WHATWG labels, else
    windows-1252. A multi-byte character cut at the end of an incomplete prefix is
    not held against UTF-8."""
    try:
        codecs.getincrementaldecoder("utf-8")().decode(prefix, final=complete)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    best = charset_normalizer.from_bytes(_detector_sample(prefix, complete=complete)).best()
    if best is None:
        return FALLBACK_ENCODING
    return resolve_encoding(best.encoding) or FALLBACK_ENCODING


def _detector_sample(prefix: bytes, *, complete: bool) -> bytes:
    """At most ``DETECT_BYTES``, cut after a newline, space or ``>``: bytes below 0x40,
    with which no multi-byte character of the CJK encodings ends, so the detector never
    sees half a character (it drops an encoding that fails to decode its sample)."""
    if complete and len(prefix) <= DETECT_BYTES:
        return prefix
    sample = prefix[:DETECT_BYTES]
    cut = max(sample.rfind(bytes([byte])) for byte in b"\n >")
    return sample[: cut + 1] if cut > 0 else sample
