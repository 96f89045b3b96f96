"""One set of field rules on every path: NUL and lone surrogates are refused with 422 /
bad_payload naming the field; the same length limits over HTTP and Socket.IO."""

from __future__ import annotations

from typing import Any

from oddstrings import check_every_field, q

from clickvote.fields import MAX_DEPTH, MAX_VOTE_TO, FieldError, check_tree

from .conftest import Client, Dashboard, Server, login, setup


def test_the_rules() -> None:
    check_tree({"voteTo": "x" * MAX_VOTE_TO, "note": "é✓😀", "n": [1, None, {"a": "b"}]})
    for data, message in (
        ({"voteTo": "a\x00"}, "voteTo: must not contain NUL characters"),
        ({"userId": "\ud800"}, "userId: must be valid Unicode (no lone surrogates)"),
        ({"voteTo": "x" * (MAX_VOTE_TO + 1)}, f"voteTo: must be at most {MAX_VOTE_TO} chara"),
        ({"token": {"token": "\x00"}}, "token.token: must not contain NUL"),
        ({"a\x00": 1}, "body: a key must not contain NUL"),
    ):
        try:
            check_tree(data)
        except FieldError as exc:
            assert exc.message.startswith(message), exc.message
        else:
            raise AssertionError(f"{data!r} passed")


def refused(r: Any, field: str) -> None:
    assert r.status_code == 422, (r.status_code, r.text)
    body = r.json()
    assert body["field"] == field and body["statusCode"] == 422, body
    assert body["message"].startswith(f"{field}: "), body


def test_nesting_is_limited_without_recursion() -> None:
    """Deep nesting is a FieldError at any depth, never a RecursionError (whose depth differs
    between Python versions: 3.13's C encoder passes 1,000 levels that 3.11's refuses)."""

    def nested(depth: int) -> Any:
        value: Any = "x"
        for i in range(depth):
            value = [value] if i % 2 else {"k": value}
        return value

    check_tree({"n": nested(MAX_DEPTH - 1)})
    for depth in (MAX_DEPTH, 5_000, 200_000):
        try:
            check_tree({"n": nested(depth)})
        except FieldError as exc:
            assert "nested more than" in exc.message and exc.field.startswith("n")
        else:
            raise AssertionError(f"{depth} levels passed")


def test_http_refuses_odd_strings_naming_the_field(server: Server, dash: Dashboard) -> None:
    pk = setup(dash)
    refused(dash.post("/auth/register", {"email": "a\ud800@b.co", "password": "x" * 8}), "email")
    refused(dash.post("/auth/login", {"email": "a@b.co", "password": "\ud800" * 8}), "password")
    refused(dash.post("/votes/", {"name": "n\ud800", "type": "single"}), "name")
    refused(dash.put("/org/update", {"name": "a\x00b"}), "name")
    refused(dash.get(f"/votes/{q('a' + chr(0))}"), "group_id")
    refused(dash.http.get(f"{server.url}/api/votes?key=pb_%00x&id=likes&voteTo=p"), "key")
    # one limit for voteTo, as on the socket
    long = "x" * (MAX_VOTE_TO + 1)
    refused(dash.http.get(f"{server.url}/api/votes?key={pk}&id=likes&voteTo={long}"), "voteTo")
    ok = dash.http.get(f"{server.url}/api/votes?key={pk}&id=likes&voteTo={long[1:]}")
    assert ok.status_code == 200, ok.text


def test_events_refuse_odd_strings_naming_the_field(dash: Dashboard, clients: Any) -> None:
    pk = setup(dash)
    c: Client = clients()
    t = login(c, pk)
    vote = {"id": "likes", "voteTo": "p", "userId": "u", "value": 1, "token": t}
    for field, value in (
        ("voteTo", "a\x00"),
        ("userId", "\ud800"),
        ("msgId", "m\x00"),
        ("voteTo", "x" * (MAX_VOTE_TO + 1)),
    ):
        ack = c.call("vote", {**vote, field: value})
        assert not ack["ok"] and ack["error"]["code"] == "bad_payload", ack
        assert ack["error"]["message"].startswith(f"{field}: "), ack
    ack = c.call("get-votes", {**vote, "voteTo": "\udfff"})
    assert ack["error"]["code"] == "bad_payload", ack


def test_arbitrary_unicode_in_every_field(server: Server) -> None:
    check_every_field(server.url, examples=2)
