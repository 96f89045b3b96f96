"""Counts without JavaScript (clickvote/api/public.py): /public/v1/counts and badge.svg."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import requests
from services import free_port, load_settings, start_uvicorn

from clickvote.app import create_app

from .conftest import TIMEOUT, Client, Dashboard, Server, login, setup

COUNTS, BADGE = "/public/v1/counts", "/public/v1/badge.svg"


def get(server: Server, path: str, headers: dict[str, str] | None = None, **params: Any) -> Any:
    return requests.get(server.url + path, params=params, headers=headers, timeout=TIMEOUT)


def vote(c: Client, token: str, group: str, item: str, user: str, value: int) -> None:
    ack = c.call(
        "vote", {"id": group, "voteTo": item, "userId": user, "value": value, "token": token}
    )
    assert ack["ok"], ack


def test_counts_shape_cache_headers_and_304(server: Server, dash: Dashboard, clients) -> None:
    pk = setup(dash, "likes")
    r = get(server, COUNTS, key=pk, group="likes", item="post-1")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == {
        "group": "likes",
        "item": "post-1",
        "type": "single",
        "total": {"count": 0, "avg": 0, "mean": 0, "sum": 0, "voters": 0},
        "startEnd": {"start": -1, "end": 1},
    }
    assert re.fullmatch(r"public, max-age=\d+", r.headers["cache-control"])
    assert r.headers["access-control-allow-origin"] == "*"
    etag = r.headers["etag"]
    again = get(server, COUNTS, {"If-None-Match": etag}, key=pk, group="likes", item="post-1")
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag and "max-age" in again.headers["cache-control"]

    c = clients()
    token = login(c, pk)
    vote(c, token, "likes", "post-1", "alice", 1)
    vote(c, token, "likes", "post-1", "bob", 1)
    # the same answer as get-votes' total
    state = c.call("get-votes", {"id": "likes", "voteTo": "post-1", "token": token})
    changed = get(server, COUNTS, {"If-None-Match": etag}, key=pk, group="likes", item="post-1")
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert changed.json()["total"] == state["total"] and state["total"]["count"] == 2


def test_badge_svg(server: Server, dash: Dashboard, clients) -> None:
    pk = setup(dash, "rate", "range", start=1, end=5)
    c = clients()
    token = login(c, pk)
    vote(c, token, "rate", "p", "a", 4)
    vote(c, token, "rate", "p", "b", 5)
    r = get(server, BADGE, key=pk, group="rate", item="p")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("image/svg+xml")
    root = ElementTree.fromstring(r.content)  # well-formed
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert texts == ["rate", "4.5/5 (2)"]
    same = get(server, BADGE, {"If-None-Match": r.headers["etag"]}, key=pk, group="rate", item="p")
    assert same.status_code == 304
    likes_pk = setup(dash, "a<b&c")  # the label is the group's name, escaped
    assert likes_pk == pk
    svg = get(server, BADGE, key=pk, group="a<b&c", item="p")
    assert svg.status_code == 200
    assert [
        t.text for t in ElementTree.fromstring(svg.content).iter() if t.tag.endswith("text")
    ] == [
        "a<b&c",
        "0",
    ]


def test_bad_input_and_unknown_key(server: Server, dash: Dashboard) -> None:
    pk = setup(dash, "likes")
    for path in (COUNTS, BADGE):
        cases: list[tuple[dict[str, str], int, str | None]] = [
            ({"key": "pb_" + "0" * 32, "group": "likes", "item": "p"}, 404, "unknown_key"),
            ({"key": "nonsense", "group": "likes", "item": "p"}, 404, "unknown_key"),
            ({"key": pk, "group": "nope", "item": "p"}, 404, "unknown_group"),
            ({"key": pk, "group": "likes"}, 422, None),
            ({"key": pk, "group": "likes", "item": ""}, 422, "bad_payload"),
            ({"key": pk, "group": "likes", "item": "x" * 257}, 422, "bad_payload"),
            ({"key": pk, "group": "likes", "item": "a\x00b"}, 422, "bad_payload"),
            ({"key": pk, "group": "l" * 101, "item": "p"}, 422, "bad_payload"),
        ]
        for params, status, code in cases:
            r = get(server, path, **params)
            assert r.status_code == status, (path, params, r.text)
            body = r.json()
            assert body["statusCode"] == status and body["message"]
            if code:
                assert body["code"] == code, body


def test_rate_limited_like_api_votes(tmp_path: Path) -> None:
    port = free_port()
    app = create_app(load_settings(port, tmp_path, rate_ip_burst=3.0, rate_ip_per_sec=0.001))
    srv, thread = start_uvicorn(app, port)
    try:
        server = Server(f"http://127.0.0.1:{port}", app.api.state.ctx, tmp_path)
        pk = setup(Dashboard(server.url), "likes")
        codes = [
            get(server, path, key=pk, group="likes", item="p").status_code
            for path in (COUNTS, BADGE, COUNTS, BADGE)
        ]
        assert codes == [200, 200, 200, 429]
        r = get(server, COUNTS, key=pk, group="likes", item="p")
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert r.json()["retryAfter"] > 0
    finally:
        srv.should_exit = True
        thread.join(timeout=10)


def test_in_openapi(server: Server) -> None:
    paths = requests.get(server.url + "/openapi.json", timeout=TIMEOUT).json()["paths"]
    assert {"key", "group", "item"} <= {p["name"] for p in paths[COUNTS]["get"]["parameters"]}
    assert "image/svg+xml" in paths[BADGE]["get"]["responses"]["200"]["content"]


def test_badge_escapes_markup_in_label_and_value() -> None:
    from clickvote.api.public import badge

    label, value = 'a<b>&"c"', "<1 & 2>"
    svg = badge(label, value).decode()
    root = ElementTree.fromstring(svg)  # well-formed
    assert root.attrib["aria-label"] == f"{label}: {value}"
    ns = "{http://www.w3.org/2000/svg}"
    assert root.findtext(f"{ns}title") == f"{label}: {value}"
    assert "<b>" not in svg and "<1" not in svg
