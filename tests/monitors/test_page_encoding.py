"""The encoding a page is decoded in, chosen as a browser chooses it."""

from __future__ import annotations

import codecs

from monitors.probes.encoding import SNIFF_BYTES, page_encoding


class TestTheEncodingChoice:
    """``page_encoding`` alone: the order of the HTML Standard's sniffing algorithm."""

    def test_the_bom_beats_the_header_and_is_skipped(self):
        body = codecs.BOM_UTF8 + "é".encode()

        assert page_encoding("text/html; charset=iso-8859-1", body, complete=True) == (
            "utf-8",
            3,
        )

    def test_the_header_beats_the_document(self):
        body = b'<meta charset="utf-8"><p>\xe9</p>'

        assert page_encoding("text/html; charset=windows-1251", body, complete=True) == (
            "cp1251",
            0,
        )

    def test_labels_map_as_the_encoding_standard_says(self):
        assert page_encoding("text/html; charset=latin1", b"", complete=True)[0] == "cp1252"
        assert page_encoding("text/html; charset=gb2312", b"", complete=True)[0] == "gb18030"
        assert page_encoding("text/html; charset=utf-16", b"", complete=True)[0] == "utf-16-le"

    def test_an_unknown_label_is_skipped(self):
        body = b'<meta charset="shift_jis">'

        assert page_encoding("text/html; charset=bogus", body, complete=True)[0] == "cp932"

    def test_a_document_declaring_utf16_in_ascii_is_read_as_utf8(self):
        assert page_encoding(None, b'<meta charset="utf-16">', complete=True)[0] == "utf-8"

    def test_undeclared_ascii_and_utf8_are_utf8_even_cut_mid_character(self):
        prefix = b"x" * (SNIFF_BYTES - 1) + "é".encode()[:1]

        assert page_encoding(None, prefix, complete=False)[0] == "utf-8"
        assert page_encoding(None, b"plain ascii", complete=True)[0] == "utf-8"
