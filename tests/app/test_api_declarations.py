"""The JSON API from its declarations (clickvote/api/): every route served is documented and
every documented operation served; requests are validated and answers documented from the
same schemas; services that change groups or settings empty the caches themselves."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import fastjsonschema
import requests
from services import free_port, load_settings
from starlette.routing import Mount, Route

from clickvote import accounts
from clickvote.api import OPERATIONS, groups, settings
from clickvote.app import PAGES
from clickvote.context import Context

from .conftest import TIMEOUT, Dashboard, Server

UNDOCUMENTED = {"/openapi.json", "/embed.js", *PAGES}


def _doc(server: Server) -> dict[str, Any]:
    r = requests.get(server.url + "/openapi.json", timeout=TIMEOUT)
    assert r.status_code == 200
    return dict(r.json())


def test_every_route_documented_and_every_operation_served(server: Server) -> None:
    from clickvote.app import create_app

    app = create_app(server.ctx.settings)
    served = set()
    for route in app.api.routes:
        if isinstance(route, Mount) or route.path in UNDOCUMENTED:
            continue
        assert isinstance(route, Route)
        served |= {(route.path, m) for m in route.methods or () if m != "HEAD"}
    documented = {
        (path, method.upper()) for path, ops in _doc(server)["paths"].items() for method in ops
    }
    assert served == documented
    # 25 of the original, counts, badge, healthz, refusals, the webhook (get, set, clear, test,
    # log)
    assert len(documented) == 34


def _schema(doc: dict[str, Any], path: str, method: str, status: int) -> dict[str, Any]:
    answer = doc["paths"][path][method]["responses"][str(status)]
    schema = answer["content"]["application/json"]["schema"]
    if "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return dict(schema)


def test_document_describes_answers_errors_session_and_enums(server: Server) -> None:
    doc = _doc(server)
    assert doc["openapi"] == "3.1.0"
    assert doc["components"]["securitySchemes"]["cookieAuth"] == {
        "type": "apiKey",
        "in": "cookie",
        "name": "auth",
    }
    error = doc["components"]["schemas"]["Error"]
    assert error["required"] == ["message", "statusCode"]
    assert {"field", "code", "errors", "retryAfter"} <= set(error["properties"])
    create = doc["paths"]["/votes/"]["post"]
    assert create["security"] == [{"cookieAuth": []}]
    assert {"401", "403", "409", "413", "422"} <= set(create["responses"])
    csrf = [p for p in create["parameters"] if p["name"] == "X-CSRF-Token"]
    assert csrf and csrf[0]["in"] == "header" and csrf[0]["required"]
    new = create["requestBody"]["content"]["application/json"]["schema"]["properties"]
    assert new["type"]["enum"] == ["single", "range", "reactions"]
    assert {"reactions", "maxPerVoter"} <= set(new)
    listed = _schema(doc, "/votes/", "get", 200)
    assert listed["required"] == ["items", "total", "page", "limit", "pages"]
    assert listed["properties"]["items"]["items"]["additionalProperties"] is False
    analytics = doc["paths"]["/votes/{name}/analytics"]["get"]
    date_range = next(p for p in analytics["parameters"] if p["name"] == "dateRange")
    assert date_range["schema"]["enum"] == ["1d", "7d", "30d", "1y"]
    login = doc["paths"]["/auth/login"]["post"]["responses"]
    assert login["429"]["headers"]["Retry-After"]["required"]
    assert "Set-Cookie" in login["200"]["headers"] and "401" in login
    assert "security" not in doc["paths"]["/api/votes"]["get"]
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert "200" in op["responses"], (path, method)
            for status, answer in op["responses"].items():
                if status.startswith("4"):
                    ref = answer["content"]["application/json"]["schema"]["$ref"]
                    assert ref == "#/components/schemas/Error", (path, method, status)


def test_answers_match_the_document(dash: Dashboard, server: Server) -> None:
    """A walk through the API: each answer fits the schema documented for its status."""
    doc = _doc(server)
    g = dash.group("documented", "range", start=1, end=5)
    pk = dash.keys()["publicKey"]
    calls = [
        ("get", "/users/self", dash.get("/users/self")),
        ("get", "/org/list", dash.get("/org/list")),
        ("get", "/env/list", dash.get("/env/list")),
        ("get", "/settings/", dash.get("/settings/")),
        ("put", "/settings/", dash.put("/settings/", {"identities": ["signed", "token"]})),
        ("put", "/settings/", dash.put("/settings/", {"ipVoters": 5, "powDifficulty": 8})),
        ("get", "/votes/", dash.get("/votes/")),
        ("get", "/votes/", dash.get("/votes/?limit=1000")),
        ("post", "/votes/", dash.post("/votes/", {"name": "documented", "type": "single"})),
        ("get", "/votes/{group_id}", dash.get(f"/votes/{g['id']}")),
        ("put", "/votes/{group_id}", dash.put(f"/votes/{g['id']}", {"end": 10})),
        ("get", "/votes/{name}/stats", dash.get("/votes/documented/stats")),
        ("get", "/votes/{name}/analytics", dash.get("/votes/documented/analytics?dateRange=1y")),
        ("get", "/analytics/data", dash.get("/analytics/data")),
        ("get", "/analytics/refusals", dash.get("/analytics/refusals?dateRange=30d")),
        ("get", "/auth/csrf", dash.get("/auth/csrf")),
        ("get", "/api/votes", dash.get(f"/api/votes?key={pk}&id=documented&voteTo=a")),
        ("get", "/api/voter-token", dash.get(f"/api/voter-token?key={pk}")),
        ("get", "/public/v1/counts", dash.get(f"/public/v1/counts?key={pk}&group=x&item=a")),
        ("get", "/healthz", dash.get("/healthz")),
        ("get", "/settings/webhook", dash.get("/settings/webhook")),
        ("put", "/settings/webhook", dash.put("/settings/webhook", {"url": "ftp://x"})),
        ("post", "/settings/webhook/test", dash.post("/settings/webhook/test")),
        ("get", "/settings/webhook/deliveries", dash.get("/settings/webhook/deliveries")),
        ("delete", "/votes/{group_id}", dash.delete(f"/votes/{g['id']}")),
        ("get", "/users/self", requests.get(server.url + "/users/self", timeout=TIMEOUT)),
    ]
    statuses = set()
    for method, path, r in calls:
        statuses.add(r.status_code)
        schema = _schema(doc, path, method, r.status_code)
        fastjsonschema.validate(schema, r.json())
    assert statuses == {200, 401, 404, 409, 422}


def test_validation_errors_name_the_field(dash: Dashboard) -> None:
    r = dash.get("/votes/?limit=1000")
    assert r.status_code == 422
    assert r.json() == {
        "message": "limit: must be at most 100",
        "statusCode": 422,
        "field": "limit",
        "errors": [{"field": "limit", "message": "must be at most 100"}],
    }
    r = dash.get("/votes/?page=two")
    assert (r.status_code, r.json()["message"]) == (422, "page: must be an integer")
    r = dash.get("/votes/x/analytics?dateRange=2w")
    assert r.json()["message"] == "dateRange: must be one of 1d, 7d, 30d, 1y"
    r = dash.post("/votes/", {"name": "typed"})
    assert (r.status_code, r.json()["field"], r.json()["message"]) == (
        422,
        "type",
        "type: required",
    )
    r = dash.post("/votes/", data="{nope", headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["field"] == "body"
    r = dash.post("/votes/", data=b"")
    assert (r.status_code, r.json()["message"]) == (422, "body: required")
    assert dash.post("/votes/", [1, 2]).json()["message"] == "body: must be an object"
    # deeper than the decoder goes (the standard library's, where orjson gives up)
    deep = "[" * 20_000 + "]" * 20_000
    for path in ("/votes/", "/settings/rotate"):
        r = dash.post(path, data=deep, headers={"content-type": "application/json"})
        assert r.status_code == 422 and r.json()["code"] == "bad_payload", (path, r.text)
    # 5.0 is an integer in JSON Schema: the group gets 5
    made = dash.post("/votes/", {"name": "floaty", "type": "range", "start": 1, "end": 5.0})
    assert made.status_code == 200 and made.json()["end"] == 5


def test_every_operation_declares_its_answers() -> None:
    for op in OPERATIONS:
        assert 200 in op.answers, op.path
        assert op.csrf <= op.session, op.path  # the CSRF check goes with a session
        unsafe = op.method in ("POST", "PUT", "DELETE")
        assert op.csrf == (unsafe and op.session), op.path


def test_services_that_change_empty_the_cache(tmp_path: Path) -> None:
    async def scenario() -> None:
        ctx = Context.build(load_settings(free_port(), tmp_path))
        await ctx.start()
        try:
            _, org = await accounts.register(ctx, "cache@example.com", "password123")
            env = (await ctx.storage.list_envs(org.id))[0]
            made = await ctx.storage.create_group(env.id, "cached-one", "single", None, None)
            group = await ctx.get_group_by_name(env.id, "cached-one")
            assert group is not None and ctx._cache
            renamed = await groups.update_group(ctx, group, {"name": "cached-two"})
            assert renamed.name == "cached-two" and not ctx._cache
            assert await ctx.get_group_by_name(env.id, "cached-one") is None
            assert await ctx.get_env(env.id) is not None and ctx._cache
            await settings.set_identities(ctx, env, ("signed",))
            assert not ctx._cache
            assert (await ctx.get_env(env.id)).identities == ("signed",)  # type: ignore[union-attr]
            assert await groups.delete_group(ctx, env.id, made.id)
            assert not ctx._cache
            assert not await groups.delete_group(ctx, env.id, made.id)
        finally:
            await ctx.close()

    asyncio.run(scenario())


def test_every_declared_schema_compiles() -> None:
    """Schemas compile on first use (clickvote/api/schema.py): a broken one must still show
    here, not only at the first request that needs it."""
    parts = ("path_params", "query", "headers", "body")
    compiled = 0
    for op in OPERATIONS:
        for part in parts:
            if getattr(op, part) is not None:
                assert callable(op.validator(part)), (op.method, op.path, part)
                compiled += 1
    assert compiled >= len(OPERATIONS) // 2
