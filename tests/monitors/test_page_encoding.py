"""Keywords in pages that are not UTF-8: each way a page can say (or not say) its
encoding, decoded as a browser decodes it, on both HTTP paths."""

from __future__ import annotations

import asyncio
import codecs
import datetime as dt
from urllib.parse import quote

import pytest

from monitors.probes import ProbeSpec, check_batch
from monitors.probes.encoding import SNIFF_BYTES, page_encoding
from telemetry.records import FailureKind
from tests.targets import ENCODED_PAGES

pytestmark = pytest.mark.usefixtures("http_path")


def check(url, *, policy, **fields):
    spec = ProbeSpec(monitor_id=1, kind="http", url=url, timeout_seconds=5, **fields)
    [result] = asyncio.run(check_batch([(spec, dt.datetime.now(dt.UTC))], policy=policy))
    return result


def page_url(target, name):
    return target.url(f"/page?name={quote(name)}")


@pytest.mark.parametrize("name", ENCODED_PAGES)
def test_a_keyword_that_must_appear_is_found_in_the_pages_own_encoding(
    name, target, loopback_policy
):
    page = ENCODED_PAGES[name]

    result = check(page_url(target, name), policy=loopback_policy, keyword=page.keyword)

    assert result.ok, result.error


@pytest.mark.parametrize("name", ENCODED_PAGES)
def test_a_forbidden_word_on_the_page_is_reported_present(name, target, loopback_policy):
    page = ENCODED_PAGES[name]

    result = check(
        page_url(target, name),
        policy=loopback_policy,
        keyword=page.keyword,
        keyword_must_appear=False,
    )

    assert result.failure == FailureKind.KEYWORD
    assert result.error == f"keyword {page.keyword!r} present"


@pytest.mark.parametrize("name", ENCODED_PAGES)
def test_a_word_not_on_the_page_is_still_missing(name, target, loopback_policy):
    result = check(page_url(target, name), policy=loopback_policy, keyword="维护中 обслуживание")

    assert result.failure == FailureKind.KEYWORD
    assert result.error.endswith("missing")


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
