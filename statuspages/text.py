"""Markdown of incident posts and page descriptions, rendered and then sanitised.

Python-Markdown renders (it passes raw HTML through, by the Markdown specification);
nh3 (the Rust ``ammonia`` sanitiser) then keeps only the tags and attributes below and
links whose scheme is http, https or mailto: no script or style, no event handler, no
``javascript:`` or ``data:`` URL, and every link gets ``rel="noopener noreferrer
nofollow"``. Whatever an owner types, a visitor's browser runs none of it.
"""

from __future__ import annotations

import markdown
import nh3
from django.utils.safestring import SafeString, mark_safe

TAGS = {
    "p", "br", "hr", "strong", "em", "code", "pre", "blockquote",
    "ul", "ol", "li", "a", "h3", "h4", "h5", "h6", "del",
}  # fmt: skip
ATTRIBUTES = {"a": {"href", "title"}}
URL_SCHEMES = {"http", "https", "mailto"}


def markdown_html(text: str) -> SafeString:
    """``text`` (Markdown) as sanitised HTML, safe to put in a page as is."""
    rendered = markdown.markdown(text, extensions=["sane_lists"], output_format="html")
    cleaned = nh3.clean(
        rendered,
        tags=TAGS,
        attributes=ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
    return mark_safe(cleaned)  # noqa: S308 (sanitised by nh3 just above)
