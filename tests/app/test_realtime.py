"""The Socket.IO protocol (compatible with @clickvote/react 0.0.8) and its guarantees."""

from __future__ import annotations

import time
from typing import Any

import requests

from clickvote.ratelimit import RateLimiter
from clickvote.security import sign_user_id

from .conftest import TIMEOUT, Client, Dashboard, Server, login, setup

ERR = "clickvote:error"


def test_original_client_flow(dash: Dashboard, clients) -> None:
    pk = setup(dash, "stars", "range", start=1, end=5)
    a: Client = clients({"token": f"{pk}:alice"})
    b: Client = clients({"token": f"{pk}:bob"})
    # login {apiKey} -> login {token, expiration}
    a.emit("login", {"apiKey": pk})
    got = a.wait("login")
    assert isinstance(got["token"], str) and time.time() < got["expiration"] < time.time() + 3600
    tb = login(b, pk)
    # get-votes -> get-votes-{id}-{voteTo} to the caller only
    a.emit(
        "get-votes",
        {"id": "stars", "voteTo": "p1", "userId": "alice", "type": "range", "token": got["token"]},
    )
    state = a.wait("get-votes-stars-p1")
    assert state == {
        "voted": False,
        "voteValue": 0,
        "total": {"count": 0, "avg": 0, "mean": 0, "sum": 0, "voters": 0},
        "startEnd": {"start": 1, "end": 5},
    }
    b.emit(
        "get-votes", {"id": "stars", "voteTo": "p1", "userId": "bob", "type": "range", "token": tb}
    )
    b.wait("get-votes-stars-p1")
    a.nothing("get-votes-stars-p1", 0.1)
    # bob votes 4 -> alice gets {total: {initial, count, avg}, poster}
    b.emit(
        "vote",
        {"id": "stars", "voteTo": "p1", "userId": "bob", "type": "range", "value": 4, "token": tb},
    )
    seen = a.wait("get-votes-stars-p1")
    assert seen["poster"] == {"value": 4}  # never the voter's id
    assert seen["total"]["initial"] == 0 and seen["total"]["count"] == 1
    assert seen["total"]["avg"] == 4
    mine = b.wait("get-votes-stars-p1")
    assert mine["voted"] is True and mine["voteValue"] == 4
    # alice votes 1 -> avg = ceil(5/2) = 3, exact mean 2.5
    ack = a.call(
        "vote",
        {"id": "stars", "voteTo": "p1", "userId": "alice", "value": 1, "token": got["token"]},
    )
    assert ack["ok"] and ack["total"]["count"] == 2 and ack["total"]["avg"] == 3
    assert ack["total"]["mean"] == 2.5
    assert b.wait("get-votes-stars-p1")["total"]["avg"] == 3


def test_single_like_and_updown(dash: Dashboard, clients) -> None:
    pk = setup(dash, "up")
    c: Client = clients()
    t = login(c, pk)

    def vote(user: str, value: int) -> dict[str, Any]:
        ack = c.call(
            "vote", {"id": "up", "voteTo": "x", "userId": user, "value": value, "token": t}
        )
        assert ack["ok"], ack
        return ack

    assert vote("a", 1)["total"]["count"] == 1
    assert vote("b", -1)["total"]["count"] == 0
    assert vote("c", -1)["total"]["count"] == -1
    assert vote("a", -1)["total"]["count"] == -3  # change 1 -> -1
    r = vote("b", 0)  # un-vote
    assert r["total"]["count"] == -2 and r["voted"] is False and r["voteValue"] == 0
    assert vote("a", 1)["total"]["count"] == 0


def test_voters_other_tab_gets_own_value(dash: Dashboard, clients) -> None:
    pk = setup(dash)
    tab1, tab2, other = clients(), clients(), clients()
    tokens = [login(x, pk) for x in (tab1, tab2, other)]
    for x, t, uid in ((tab1, tokens[0], "u"), (tab2, tokens[1], "u"), (other, tokens[2], "v")):
        x.call("get-votes", {"id": "likes", "voteTo": "a", "userId": uid, "token": t})
        x.drain()
    tab1.call("vote", {"id": "likes", "voteTo": "a", "userId": "u", "value": 1, "token": tokens[0]})
    own = tab2.wait("get-votes-likes-a")
    assert own["voted"] is True and own["voteValue"] == 1 and own["total"]["count"] == 1
    assert "poster" not in own
    theirs = other.wait("get-votes-likes-a")
    assert theirs["poster"] == {"value": 1} and "voteValue" not in theirs
    tab1.nothing("get-votes-likes-a")  # the voting page had it in its ack: not twice
    # a page that asks for no acknowledgement (the React client) gets it as the event
    tab1.emit("vote", {"id": "likes", "voteTo": "a", "userId": "u", "value": 0, "token": tokens[0]})
    mine = tab1.wait("get-votes-likes-a")
    assert mine["voted"] is False and mine["total"]["count"] == 0 and "poster" not in mine
    assert tab2.wait("get-votes-likes-a")["voted"] is False


def test_broadcast_only_to_same_env_group_and_item(server: Server, clients) -> None:
    a, b = Dashboard(server.url), Dashboard(server.url)
    pka, pkb = setup(a, "likes"), setup(b, "likes")
    a.group("other")
    ca, cb, c_item, c_group = clients(), clients(), clients(), clients()
    ta, tb, ti, tg = login(ca, pka), login(cb, pkb), login(c_item, pka), login(c_group, pka)
    cb.call("get-votes", {"id": "likes", "voteTo": "same", "userId": "z", "token": tb})
    c_item.call("get-votes", {"id": "likes", "voteTo": "different", "userId": "z", "token": ti})
    c_group.call("get-votes", {"id": "other", "voteTo": "same", "userId": "z", "token": tg})
    for x in (cb, c_item, c_group):
        x.drain()
    assert ca.call(
        "vote", {"id": "likes", "voteTo": "same", "userId": "y", "value": 1, "token": ta}
    )["ok"]
    cb.nothing("get-votes-likes-same")
    c_item.nothing("get-votes-likes-same", 0.05)
    c_group.nothing("get-votes-other-same", 0.05)
    # B's totals are untouched and A's key cannot reach B's group through B's token
    st = cb.call("get-votes", {"id": "likes", "voteTo": "same", "userId": "z", "token": tb})
    assert st["total"]["count"] == 0
    # A's token only resolves A's environment: B's group named differently is unknown
    b.group("only-b")
    bad = ca.call(
        "vote", {"id": "only-b", "voteTo": "same", "userId": "y", "value": 1, "token": ta}
    )
    assert not bad["ok"] and bad["error"]["code"] == "unknown_group"


def test_idempotent_retries(dash: Dashboard, clients) -> None:
    pk = setup(dash)
    c, watcher = clients(), clients()
    t, tw = login(c, pk), login(watcher, pk)
    watcher.call("get-votes", {"id": "likes", "voteTo": "i", "userId": "w", "token": tw})
    watcher.drain()
    msg = {"id": "likes", "voteTo": "i", "userId": "u", "value": 1, "token": t, "msgId": "m-1"}
    first = c.call("vote", msg)
    second = c.call("vote", msg)
    assert first["ok"] and second["ok"] and second["replayed"] and not first["replayed"]
    strip = {k: v for k, v in first.items() if k != "replayed"}
    assert {k: v for k, v in second.items() if k != "replayed"} == strip
    assert first["total"]["count"] == 1
    watcher.wait("get-votes-likes-i")
    watcher.nothing("get-votes-likes-i")  # the retry is not broadcast
    # an un-vote with a new msgId, then a retry of the old one: still counted once
    assert c.call("vote", {**msg, "value": 0, "msgId": "m-2"})["total"]["count"] == 0
    c.drain()
    late = c.call("vote", msg)
    assert late["replayed"]
    # the late retry answers with the state now, not the first answer's totals
    assert (late["total"]["count"], late["voted"], late["voteValue"]) == (0, False, 0)
    c.nothing("get-votes-likes-i", 0.05)  # in the ack only
    c.emit("vote", msg)  # retried with no ack asked: the same answer as an event
    page = c.wait("get-votes-likes-i")
    assert (page["total"]["count"], page["voted"], page["voteValue"]) == (0, False, 0)
    st = c.call("get-votes", {"id": "likes", "voteTo": "i", "userId": "u", "token": t})
    assert st["total"]["count"] == 0 and st["voteValue"] == 0


def test_signed_user_ids(dash: Dashboard, clients) -> None:
    pk = setup(dash)
    sk = dash.keys()["secretKey"]
    assert dash.put("/settings/", {"requireSigned": True}).json()["requireSigned"] is True
    c = clients()
    t = login(c, pk)
    base = {"id": "likes", "voteTo": "s", "value": 1, "token": t}
    r = c.call("vote", {**base, "userId": "alice"})
    assert not r["ok"] and r["error"]["code"] == "signature_required"
    r = c.call("vote", {**base, "userId": "alice", "signature": sign_user_id(sk, "mallory")})
    assert not r["ok"] and r["error"]["code"] == "bad_signature"
    r = c.call("vote", {**base, "userId": "alice", "signature": sign_user_id(sk, "alice")})
    assert r["ok"] and r["total"]["count"] == 1
    # forged signature is rejected even when not required
    dash.put("/settings/", {"requireSigned": False})
    r = c.call("vote", {**base, "userId": "bob", "signature": "00" * 32})
    assert not r["ok"] and r["error"]["code"] == "bad_signature"


def test_anonymous_voter_tokens(dash: Dashboard, clients, server: Server) -> None:
    pk = setup(dash)
    dash.put("/settings/", {"identities": ["signed", "token"]})
    tok = requests.get(server.url + "/api/voter-token", params={"key": pk}, timeout=TIMEOUT).json()
    c = clients()
    t = login(c, pk)
    base = {"id": "likes", "voteTo": "anon", "token": t}
    r = c.call("vote", {**base, "value": 1, "voterToken": tok["token"]})
    assert r["ok"] and r["userId"] == tok["voterId"] and r["total"]["count"] == 1
    # voting again with the same token is the same voter: still one vote
    r = c.call("vote", {**base, "value": 1, "voterToken": tok["token"]})
    assert r["total"]["count"] == 1
    forged = tok["token"][:-4] + ("0000" if not tok["token"].endswith("0000") else "1111")
    r = c.call("vote", {**base, "value": 1, "voterToken": forged})
    assert not r["ok"] and r["error"]["code"] == "bad_voter_token"
    other_env = Dashboard(server.url)
    other_pk = setup(other_env)
    tok2 = requests.get(
        server.url + "/api/voter-token", params={"key": other_pk}, timeout=TIMEOUT
    ).json()
    r = c.call("vote", {**base, "value": 1, "voterToken": tok2["token"]})
    assert not r["ok"] and r["error"]["code"] == "bad_voter_token"


def test_bad_inputs_answer_errors_and_keep_connection(dash: Dashboard, clients, server) -> None:
    pk = setup(dash, "stars", "range", start=1, end=5)
    c = clients()
    c.emit("login", {"apiKey": "pb_unknown"})
    err = c.wait(ERR)
    assert err["code"] == "unknown_key" and err["event"] == "login"
    t = login(c, pk)
    expired_token, _ = server.ctx.box.login_token("x", pk, -10)
    cases: list[tuple[Any, str]] = [
        ({"id": "stars", "voteTo": "a", "userId": "u", "value": 3, "token": "forged"}, "bad_token"),
        (
            {"id": "stars", "voteTo": "a", "userId": "u", "value": 3, "token": expired_token},
            "token_expired",
        ),
        ({"id": "nope", "voteTo": "a", "userId": "u", "value": 1, "token": t}, "unknown_group"),
        ({"id": "stars", "voteTo": "a", "userId": "u", "value": 6, "token": t}, "bad_value"),
        ({"id": "stars", "voteTo": "a", "userId": "u", "value": -1, "token": t}, "bad_value"),
        ({"id": "stars", "voteTo": "a", "userId": "u", "value": 2.5, "token": t}, "bad_value"),
        ({"id": "stars", "voteTo": "a", "userId": "u", "value": "3", "token": t}, "bad_value"),
        ({"id": "stars", "voteTo": "a", "userId": "u", "token": t}, "bad_value"),
        ({"id": "stars", "voteTo": "", "userId": "u", "value": 1, "token": t}, "bad_vote_to"),
        ({"id": "stars", "voteTo": "a", "userId": {"x": 1}, "value": 1, "token": t}, "bad_user"),
        ({"id": "stars", "voteTo": "a", "userId": "u", "value": 1}, "unauthorized"),
        (
            {"id": "stars", "voteTo": "a" * 5000, "userId": "u", "value": 1, "token": t},
            "payload_too_large",
        ),
        ("just a string", "bad_payload"),
        ([1, 2, 3], "bad_payload"),
    ]
    for payload, code in cases:
        c.emit("vote", payload)
        err = c.wait(ERR)
        assert err["code"] == code, (payload if len(str(payload)) < 200 else "big", err)
        assert err["event"] == "vote" and err["message"]
    # the client `type` is never trusted: "single" does not allow -1 on a range group
    bad = c.call(
        "vote",
        {"id": "stars", "voteTo": "a", "userId": "u", "value": -1, "type": "single", "token": t},
    )
    assert not bad["ok"]
    # the connection still works
    ok = c.call("vote", {"id": "stars", "voteTo": "a", "userId": "u", "value": 5, "token": t})
    assert ok["ok"] and ok["total"]["count"] == 1 and ok["total"]["avg"] == 5
    # and so does the server
    assert requests.get(server.url + "/healthz", timeout=TIMEOUT).status_code == 200


def test_rotated_key_invalidates_login_tokens(dash: Dashboard, clients) -> None:
    pk = setup(dash)
    c = clients()
    t = login(c, pk)
    dash.post("/settings/rotate")
    r = c.call("vote", {"id": "likes", "voteTo": "a", "userId": "u", "value": 1, "token": t})
    assert not r["ok"] and r["error"]["code"] == "bad_token"
    r = c.call("login", {"apiKey": pk})
    assert not r["ok"] and r["error"]["code"] == "unknown_key"


def test_rate_limit_per_voter(dash: Dashboard, clients, server: Server) -> None:
    pk = setup(dash)
    c = clients()
    t = login(c, pk)
    saved = server.ctx.voter_limiter
    server.ctx.voter_limiter = RateLimiter(burst=3, per_second=0.01)
    try:
        results = [
            c.call("vote", {"id": "likes", "voteTo": "r", "userId": "spam", "value": 1, "token": t})
            for _ in range(5)
        ]
        other = c.call(
            "vote", {"id": "likes", "voteTo": "r", "userId": "calm", "value": 1, "token": t}
        )
    finally:
        server.ctx.voter_limiter = saved
    assert [r["ok"] for r in results] == [True, True, True, False, False]
    assert results[3]["error"]["code"] == "rate_limited" and results[3]["error"]["retryAfter"] > 0
    assert other["ok"]


def test_react_client_token_quirks(dash: Dashboard, clients, server) -> None:
    """@clickvote/react 0.0.8 re-sends the whole login answer as `token` and never renews it."""
    pk = setup(dash, "quirks")
    c = clients({"token": f"{pk}:carol"})
    c.emit("login", {"apiKey": pk})
    answer = c.wait("login")
    base = {"id": "quirks", "voteTo": "q1", "userId": "carol", "type": "single"}
    r = c.call("vote", {**base, "value": 1, "token": answer})
    assert r["ok"], r
    # An expired token from a page that named its key in the handshake still works...
    expired, _ = server.ctx.box.login_token("x", pk, -10)
    r = c.call("vote", {**base, "value": 0, "token": expired})
    assert r["ok"], r
    # ...but a forged one never does.
    r = c.call("vote", {**base, "value": 1, "token": {"token": "forged"}})
    assert not r["ok"] and r["error"]["code"] == "bad_token"
