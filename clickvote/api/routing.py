"""An Operation as a Starlette route: the shared field rules on the path, the query and the
body, then the session (and CSRF), then the operation's schemas, then its handler."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from clickvote import jsonfast
from clickvote.api.schema import Invalid, Operation
from clickvote.api.session import UNSAFE, Call, current
from clickvote.fields import MAX_DEPTH, FieldError, check_tree

NO_BODY = object()


async def read_json(request: Request) -> Any:
    """The request's JSON body, NO_BODY when empty; Invalid when it is not JSON, FieldError
    when it nests deeper than the decoder's stack goes."""
    raw = await request.body()
    if not raw.strip():
        return NO_BODY
    try:
        return jsonfast.loads(raw.decode("utf-8"))
    except ValueError as exc:
        raise Invalid([("body", f"must be JSON ({exc})")]) from None
    except RecursionError:
        raise FieldError("body", f"is nested more than {MAX_DEPTH} levels deep") from None


async def parse(op: Operation, request: Request) -> Call:
    ctx = request.app.state.ctx
    check_tree(request.path_params)
    query = dict(request.query_params)
    check_tree(query)
    body: Any = NO_BODY
    if op.body is not None:
        body = await read_json(request)
        if body is not NO_BODY:
            check_tree(body)
    elif request.method in UNSAFE and "json" in request.headers.get("content-type", ""):
        with contextlib.suppress(Invalid):  # a body the operation ignores: checked all the same
            check_tree(await read_json(request))
    call = Call(request, ctx)
    if op.session:
        call.auth_ = await current(request, ctx, op.csrf)
    if op.path_params is not None:
        call.params.update(op.check("path_params", dict(request.path_params)))
    if op.query is not None:
        call.params.update(op.check("query", query))
    if op.headers is not None:
        names = op.headers["properties"]
        sent = {n: request.headers[n] for n in names if n in request.headers}
        call.headers = op.check("headers", sent)
    if op.body is not None:
        if body is NO_BODY:
            raise Invalid([("body", "required")])
        call.body = op.check("body", body)
    return call


def endpoint(op: Operation) -> Callable[[Request], Awaitable[Response]]:
    async def serve(request: Request) -> Response:
        call = await parse(op, request)
        result = await op.handler(call)
        response = result if isinstance(result, Response) else JSONResponse(result)
        response.raw_headers.extend(
            (k, v) for k, v in call.response.raw_headers if k == b"set-cookie"
        )
        return response

    serve.__name__ = op.handler.__name__
    return serve


def routes(operations: Iterable[Operation]) -> list[Route]:
    return [Route(op.path, endpoint(op), methods=[op.method]) for op in operations]
