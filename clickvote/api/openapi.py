"""The OpenAPI 3.1 document (`GET /openapi.json`), written from the operations' declarations:
what each one takes, and every answer it can give, errors included."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from clickvote.api.errors import ERROR
from clickvote.api.schema import JSON, Answer, Operation, string
from clickvote.api.session import CSRF_HEADER, SESSION_COOKIE

ERRORS = {
    400: "the request was refused (see `code`)",
    401: "not logged in, or a wrong login",
    403: "forbidden: no CSRF header, or not allowed (see `message`, `code`)",
    404: "not found",
    409: "conflicts with what exists (a name or email in use, a group with votes)",
    413: "request body too large",
    422: "invalid request: `field` names the first bad field",
    429: "too many requests: wait `Retry-After` seconds",
}
RETRY_AFTER = {
    "description": "seconds to wait",
    "required": True,
    "schema": string(pattern="^[0-9]+$"),
}


def parameters(op: Operation) -> list[JSON]:
    out = []
    for where, schema in (("path", op.path_params), ("query", op.query), ("header", op.headers)):
        if schema is None:
            continue
        required = set(schema.get("required", ()))
        for name, prop in schema["properties"].items():
            out.append(
                {
                    "name": name,
                    "in": where,
                    "required": name in required or where == "path",
                    "schema": prop,
                }
            )
    if op.csrf:
        out.append(
            {
                "name": CSRF_HEADER,
                "in": "header",
                "required": True,
                "description": "the value of the csrftoken cookie",
                "schema": string(),
            }
        )
    return out


def response(answer: Answer) -> JSON:
    out: JSON = {"description": answer.description}
    if answer.schema is not None:
        out["content"] = {answer.media: {"schema": answer.schema}}
    if answer.headers:
        out["headers"] = {
            name: {"required": True, "schema": schema} for name, schema in answer.headers.items()
        }
    return out


def operation(op: Operation) -> JSON:
    responses = {str(status): response(a) for status, a in sorted(op.answers.items())}
    for status in op.error_statuses():
        error: JSON = {
            "description": ERRORS[status],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        if status == 429:
            error["headers"] = {"Retry-After": RETRY_AFTER}
        responses.setdefault(str(status), error)
    out: JSON = {
        "tags": [op.tag],
        "summary": op.summary,
        "operationId": op.handler.__name__,
        "responses": responses,
    }
    params = parameters(op)
    if params:
        out["parameters"] = params
    if op.body is not None:
        out["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": op.body}},
        }
    if op.session:
        out["security"] = [{"cookieAuth": []}]
    return out


def document(operations: Iterable[Operation], title: str, version: str) -> dict[str, Any]:
    paths: dict[str, JSON] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method.lower()] = operation(op)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": {"Error": ERROR},
            "securitySchemes": {
                "cookieAuth": {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE}
            },
        },
    }
