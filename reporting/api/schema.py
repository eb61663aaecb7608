"""The OpenAPI document tells every status code an endpoint can answer.

Endpoints declare their success answers (and any of their own, like a test send's
502); this schema class adds the error answers that follow from what the endpoint is,
the same way everywhere, each with its body:

| code | when | added to |
| --- | --- | --- |
| 400 | a bad body or query parameter, naming it | operations with a body or a query |
| 401 | no or bad credentials | every operation |
| 403 | a write the role or key may not make; no CSRF token | POST, PATCH, DELETE |
| 404 | an id you may not see, or a page past the end | operations with a path id or pages |
| 406 | an ``Accept`` header that allows no JSON | every operation |
| 409 | a write that collides with a concurrent one | POST, PATCH |
| 415 | a body of a type the API does not read | operations with a body |
| 429 | over a rate (``SENTINEL_API_RATE``, ``..._CHECK_NOW_RATE``), with ``Retry-After`` | all |

The bodies are what ``reporting.api.errors.exception_handler`` answers: ``{"detail":
"..."}``, and for a 400 an object of field names to their messages.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular import openapi
from drf_spectacular.plumbing import ResolvedComponent

ERROR = ResolvedComponent(
    name="Error",
    type=ResolvedComponent.SCHEMA,
    object="Error",
    schema={
        "type": "object",
        "properties": {"detail": {"type": "string", "description": "What went wrong."}},
        "required": ["detail"],
    },
)
VALIDATION_ERROR = ResolvedComponent(
    name="ValidationError",
    type=ResolvedComponent.SCHEMA,
    object="ValidationError",
    schema={
        "type": "object",
        "description": "Each field that is wrong, with its messages (a list field's items "
        "or an object's keys nest); `non_field_errors` for what concerns several fields; "
        "`detail` for a body that could not be read at all.",
        "properties": {
            "detail": {"type": "string"},
            "non_field_errors": {"type": "array", "items": {"type": "string"}},
        },
        "additionalProperties": {
            "oneOf": [{"type": "array", "items": {}}, {"type": "object"}, {"type": "string"}]
        },
    },
)
RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds until the next request is accepted.",
        "required": True,
        "schema": {"type": "integer"},
    }
}
DESCRIPTIONS = {
    "400": "Bad input: the body names each field that is wrong.",
    "401": "No credentials, or they are not valid.",
    "403": "Forbidden: your role in the project (or a read-only API key) does not allow "
    "this change, or a session's unsafe request without its CSRF token.",
    "404": "Not found: no such object among those you may see (an object of a project "
    "you are not in is not found either), or a page past the end.",
    "406": "Not acceptable: the Accept header allows no JSON, the only answer there is.",
    "409": "Conflict with a concurrent change; nothing was saved. Try again.",
    "415": "The body is of a type the API does not read (send application/json).",
    "429": "Too many requests for this token or user; wait Retry-After seconds.",
}
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's schema with the error answers of the table above."""

    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        responses = operation["responses"]
        for code in self._error_codes(operation):
            if code not in responses:
                responses[code] = self._error_response(code)
            elif code == "400":
                self._also_field_errors(responses["400"])
        return operation

    def _also_field_errors(self, response: dict[str, Any]) -> None:
        """An operation that declares a 400 body of its own (a file's problems) still
        answers a bad parameter with field errors: its schema is either."""
        self.registry.register_on_missing(VALIDATION_ERROR)
        for media in response.get("content", {}).values():
            if "schema" in media:
                media["schema"] = {"anyOf": [media["schema"], VALIDATION_ERROR.ref]}

    def _error_codes(self, operation: dict[str, Any]) -> list[str]:
        locations = {parameter["in"] for parameter in operation.get("parameters", [])}
        has_body = "requestBody" in operation
        codes = ["401", "406", "429"]
        if has_body or "query" in locations:
            codes.append("400")
        # DRF answers an unknown ``?format=`` (its renderer override) with a 404.
        names = {parameter["name"] for parameter in operation.get("parameters", [])}
        if "path" in locations or self._is_paged() or "format" in names:
            codes.append("404")
        if self.method in UNSAFE:
            codes.append("403")
        if self.method in ("POST", "PUT", "PATCH"):
            codes.append("409")
        if has_body:
            codes.append("415")
        return sorted(codes)

    def _is_paged(self) -> bool:
        return self.method == "GET" and self._is_list_view() and self._get_paginator() is not None

    def _error_response(self, code: str) -> dict[str, Any]:
        component = VALIDATION_ERROR if code == "400" else ERROR
        self.registry.register_on_missing(component)
        response: dict[str, Any] = {
            "description": DESCRIPTIONS[code],
            "content": {"application/json": {"schema": component.ref}},
        }
        if code == "429":
            response["headers"] = RETRY_AFTER
        return response
