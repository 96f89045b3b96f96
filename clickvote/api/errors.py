"""Errors as JSON answers: `{message, statusCode, field?, code?, errors?, retryAfter?}` (and
`Retry-After` on 429 and 503), whatever raised them: the handlers, the account rules, the field
rules, storage, the voting engine, request validation or the router."""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from clickvote.accounts import LoginFailed, Refused
from clickvote.api.schema import Invalid, integer, number, obj, string
from clickvote.errors import STORAGE_RETRY, ClickVoteError
from clickvote.fields import FieldError
from clickvote.ratelimit import retry_after, retry_after_header
from clickvote.storage import Conflict, NotFound, StorageUnavailable

ERROR = obj(
    {"message": string(), "statusCode": integer(400, 599)},
    {
        "field": string(),
        "code": string(),
        "errors": {
            "type": "array",
            "items": obj({"field": string(), "message": string()}, closed=True),
        },
        "retryAfter": number(),
    },
    closed=True,
)


class ApiError(Exception):
    def __init__(
        self, status: int, message: str, field: str | None = None, wait: float | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field
        self.wait = wait  # a 429's wait in seconds


def error_body(status: int, message: str, field: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"message": message, "statusCode": status}
    if field:
        body["field"] = field
    return body


def answer(exc: Exception) -> JSONResponse:
    """The JSON answer to one of the exceptions in HANDLERS."""
    if isinstance(exc, ApiError):
        body = error_body(exc.status, exc.message, exc.field)
        if exc.wait is None:
            return JSONResponse(body, exc.status)
        body["retryAfter"] = retry_after(exc.wait)  # seconds, to the millisecond
        return JSONResponse(body, 429, headers={"Retry-After": retry_after_header(exc.wait)})
    if isinstance(exc, Invalid):
        field, what = exc.errors[0]
        body = error_body(422, f"{field}: {what}", field)
        body["errors"] = [{"field": f, "message": m} for f, m in exc.errors]
        return JSONResponse(body, 422)
    if isinstance(exc, Refused):
        return JSONResponse(error_body(422, exc.message, exc.field), 422)
    if isinstance(exc, FieldError):
        return JSONResponse({**error_body(422, exc.message, exc.field), "code": "bad_payload"}, 422)
    if isinstance(exc, LoginFailed):
        return JSONResponse(error_body(401, exc.message), 401)
    if isinstance(exc, Conflict):
        return JSONResponse(error_body(409, exc.message, exc.field), 409)
    if isinstance(exc, NotFound):
        return JSONResponse(error_body(404, f"{exc} not found"), 404)
    if isinstance(exc, ClickVoteError):
        body = {**error_body(exc.status, exc.message), "code": exc.code}
        return JSONResponse(body, exc.status)
    if isinstance(exc, StorageUnavailable):  # transient: the same request may be sent again
        busy = ClickVoteError("storage_unavailable")
        body = {**error_body(busy.status, busy.message), "code": busy.code}
        body["retryAfter"] = STORAGE_RETRY
        headers = {"Retry-After": retry_after_header(STORAGE_RETRY)}
        return JSONResponse(body, busy.status, headers=headers)
    assert isinstance(exc, HTTPException)
    return JSONResponse(
        error_body(exc.status_code, str(exc.detail)), exc.status_code, headers=exc.headers
    )


async def handle(request: Request, exc: Exception) -> JSONResponse:
    return answer(exc)


HANDLERS: dict[Any, Any] = {
    kind: handle
    for kind in (
        ApiError,
        Invalid,
        Refused,
        FieldError,
        LoginFailed,
        Conflict,
        NotFound,
        ClickVoteError,
        StorageUnavailable,
        HTTPException,
    )
}
