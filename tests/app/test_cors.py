"""CORS (clickvote/cors.py): the embed's endpoints answer any origin with `*` and never allow
credentials; the dashboard's endpoints answer a foreign origin with no CORS header at all."""

from __future__ import annotations

import re

import pytest
import requests

from clickvote.api import OPERATIONS
from clickvote.cors import public

from .conftest import TIMEOUT, Dashboard, Server, setup

FOREIGN = "https://evil.example"
SESSION_OPS = [op for op in OPERATIONS if op.session]


def cors_headers(r: requests.Response) -> dict[str, str]:
    return {k.lower(): v for k, v in r.headers.items() if k.lower().startswith("access-control-")}


def preflight(url: str, method: str) -> requests.Response:
    headers = {
        "Origin": FOREIGN,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "content-type, x-csrf-token",
    }
    return requests.options(url, headers=headers, timeout=TIMEOUT)


def assert_open_without_credentials(r: requests.Response) -> None:
    seen = cors_headers(r)
    assert seen.get("access-control-allow-origin") == "*", (r.url, seen)
    assert "access-control-allow-credentials" not in seen, (r.url, seen)


def test_session_operations_are_declared() -> None:
    assert len(SESSION_OPS) >= 15
    assert not any(public(op.path) for op in SESSION_OPS)


@pytest.mark.parametrize("op", SESSION_OPS, ids=lambda op: f"{op.method} {op.path}")
def test_foreign_origin_gets_no_access_to_the_dashboard_api(server: Server, op) -> None:
    d = Dashboard(server.url)  # its own session: logout and rotate touch nobody else
    url = server.url + re.sub(r"\{\w+\}", "missing", op.path)
    assert cors_headers(preflight(url, op.method)) == {}
    r = d.http.request(op.method, url, json={}, headers={"Origin": FOREIGN}, timeout=TIMEOUT)
    assert r.status_code < 500, r.text
    assert cors_headers(r) == {}, (op.method, op.path)


def test_foreign_origin_gets_no_access_to_the_dashboard_pages(server: Server) -> None:
    for path in ("/", "/settings", "/groups/abc", "/openapi.json", "/static/index.html"):
        r = requests.get(server.url + path, headers={"Origin": FOREIGN}, timeout=TIMEOUT)
        assert cors_headers(r) == {}, path
        assert cors_headers(preflight(server.url + path, "GET")) == {}, path


def test_socketio_polling_answers_any_origin_without_credentials(server: Server) -> None:
    url = server.url + "/socket.io/?EIO=4&transport=polling"
    r = requests.get(url, headers={"Origin": FOREIGN}, timeout=TIMEOUT)
    assert r.status_code == 200 and r.text.startswith("0"), r.text
    assert_open_without_credentials(r)
    pre = preflight(url, "POST")
    assert pre.status_code == 204
    assert_open_without_credentials(pre)
    assert "POST" in pre.headers["access-control-allow-methods"]
    bad = requests.get(url + "&sid=nope", headers={"Origin": FOREIGN}, timeout=TIMEOUT)
    assert bad.status_code == 400
    assert_open_without_credentials(bad)


def test_embed_endpoints_answer_any_origin_without_credentials(
    server: Server, dash: Dashboard
) -> None:
    pk = setup(dash, "open")
    for path, params in (
        ("/api/votes", {"key": pk, "id": "open", "voteTo": "a"}),
        ("/api/voter-token", {"key": pk}),
        ("/public/v1/counts", {"key": pk, "group": "open", "item": "a"}),
        ("/public/v1/badge.svg", {"key": pk, "group": "open", "item": "a"}),
        ("/public/v1/counts", {"key": "pb_nope", "group": "open", "item": "a"}),  # an error
        ("/embed.js", {}),
    ):
        r = requests.get(
            server.url + path, params=params, headers={"Origin": FOREIGN}, timeout=TIMEOUT
        )
        assert r.status_code < 500, r.text
        assert_open_without_credentials(r)
        pre = preflight(server.url + path, "GET")
        assert pre.status_code == 204, path
        assert_open_without_credentials(pre)
