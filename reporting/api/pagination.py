from __future__ import annotations

from rest_framework.pagination import PageNumberPagination

MAX_PAGE_SIZE = 200


class PagePagination(PageNumberPagination):
    """Numbered pages, the same for every list of the API (``?page=``,
    ``?page_size=``); ``page_size`` is capped so no request reads the whole fleet at
    once."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
