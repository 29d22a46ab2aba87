"""JSON error bodies for every failure, and the handlers that produce them.

Every error the service returns has the same shape (:class:`ErrorBody`)::

    {"error": "validation_error", "message": "2 invalid fields",
     "errors": [{"field": "tenure", "reason": "Input should be less than or equal to 1200",
                 "type": "out_of_range"}]}

A refused scoring body's ``errors[].type`` is the error type the stream writes in a
dead letter's ``error_type`` header for the same bytes (docs/contract.md).

Inputs are never echoed back (they may hold customer data) and never logged.
Nothing internal is either: no stack trace, no filesystem path, no hash of a
stored artifact (:func:`public_text` scrubs what comes from elsewhere).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

log = logging.getLogger(__name__)


class FieldError(BaseModel):
    field: str
    reason: str
    type: str


class ErrorBody(BaseModel):
    error: str
    message: str
    errors: list[FieldError] = []


class ApiError(Exception):
    """An error with a status code, a short machine-readable code and a message for people."""

    def __init__(
        self,
        status_code: int,
        error: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
        errors: Sequence[dict[str, str]] = (),
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.error = error
        self.message = message
        self.headers = headers
        self.extra = extra
        self.errors = errors


_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "body_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
    422: "validation_error",
    503: "unavailable",
}


#: An absolute filesystem path (POSIX, or a Windows drive), or a run of 12+ hex digits.
_INTERNALS = re.compile(r"(?<![\w.:/])(?:[A-Za-z]:)?[\\/](?:[\w.~@+-]+[\\/])+[\w.~@+-]*|\b[0-9a-fA-F]{12,}\b")


def public_text(text: str) -> str:
    """``text`` without absolute paths and long hex runs (hashes), for an answer to a client."""
    return _INTERNALS.sub("[redacted]", text)


def error_response(
    status_code: int,
    error: str,
    message: str,
    errors: Sequence[dict[str, str]] = (),
    *,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Response:
    body: dict[str, Any] = {"error": error, "message": message, "errors": list(errors)}
    if extra:
        body.update(extra)
    return Response(orjson.dumps(body), status_code, headers=headers, media_type="application/json")


def field_errors(raw: Sequence[Any]) -> list[dict[str, str]]:
    """pydantic/FastAPI error dicts as ``field`` + ``reason`` (no input values)."""
    out = []
    for item in raw:
        loc = [str(part) for part in item.get("loc", ())]
        if loc and loc[0] == "body":
            loc = loc[1:]
        out.append(
            {
                "field": ".".join(loc) or "body",
                "reason": str(item.get("msg", "invalid")),
                "type": str(item.get("type", "value_error")),
            }
        )
    return out


def invalid_json_response(raw: Sequence[Any]) -> Response | None:
    """The 400 answer when pydantic's errors say the body is not JSON at all, else None."""
    broken = [item for item in raw if item.get("type") == "json_invalid"]
    if not broken:
        return None
    reason = str((broken[0].get("ctx") or {}).get("error", "decode error"))
    return error_response(400, "invalid_json", f"the body is not valid JSON: {reason}")


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    raw = exc.errors()
    unreadable = invalid_json_response(raw)
    if unreadable is not None:
        return unreadable
    errors = field_errors(raw)
    if len(raw) == 1 and raw[0].get("loc") == ("body",) and raw[0].get("type") == "missing":
        return error_response(422, "validation_error", "a JSON body is required", errors)
    noun = "field" if len(errors) == 1 else "fields"
    return error_response(422, "validation_error", f"{len(errors)} invalid {noun}", errors)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = _STATUS_CODES.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    headers = dict(exc.headers) if exc.headers else None
    return error_response(exc.status_code, code, message, headers=headers)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(
        exc.status_code, exc.error, exc.message, exc.errors, headers=exc.headers, extra=exc.extra
    )


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled_error method=%s path=%s", request.method, request.url.path)
    return error_response(500, "internal_error", "internal server error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(Exception, _unexpected)


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for the error codes a route can return."""
    descriptions = {
        400: "The body is not JSON (or not UTF-8).",
        401: "X-API-Key header missing (when an API key is configured).",
        403: "X-API-Key does not match any key, or the key lacks the route's scope.",
        409: "The promoted model was refused; the previous one keeps serving.",
        413: "Body larger than the configured limit.",
        415: "Body is not application/json.",
        422: "Invalid input: each error names the field and the reason.",
        429: "Rate limit exceeded (when configured), or too many wrong keys from this address; "
        "Retry-After says when to retry.",
        503: "No verified model is loaded yet.",
        504: "The request took longer than the configured request timeout.",
    }
    return {code: {"model": ErrorBody, "description": descriptions[code]} for code in codes}
