from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request

MAX_PAGE_SIZE = 200


class PagePagination(PageNumberPagination):
    """Numbered pages, the same for every list of the API (``?page=``,
    ``?page_size=``); ``page_size`` is capped so no request reads the whole fleet at
    once. A ``page_size`` that is not a whole number of at least 1 is a 400 naming it
    (DRF alone would answer the default page, hiding the caller's mistake); a page
    past the end is a 404."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        try:
            size = int(raw)
        except ValueError:
            size = 0
        if size < 1:
            raise ValidationError({self.page_size_query_param: "A whole number, at least 1."})
        return min(size, self.max_page_size)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters: list[dict[str, Any]] = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"]["minimum"] = 1
            if parameter["name"] == self.page_size_query_param:
                parameter["description"] = (
                    f"Results per page, default {self.page_size}; "
                    f"more than {self.max_page_size} is {self.max_page_size}."
                )
        return parameters
