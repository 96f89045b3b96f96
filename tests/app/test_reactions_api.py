"""Reactions groups over the JSON API and the socket: definitions, toggles, per-id totals."""

from __future__ import annotations

from typing import Any

import requests

from .conftest import TIMEOUT, Dashboard, Server, login

ITEMS = [{"id": "👍", "label": "Like"}, {"id": "heart", "label": "Love"}, {"id": "🎉"}]


def react(c: Any, token: str, item: str, user: str, rid: Any) -> Any:
    return c.call(
        "vote", {"id": "react", "voteTo": item, "userId": user, "value": rid, "token": token}
    )


def counts(server: Server, pk: str, item: str) -> Any:
    r = requests.get(
        server.url + "/public/v1/counts",
        params={"key": pk, "group": "react", "item": item},
        timeout=TIMEOUT,
    )
    assert r.status_code == 200, r.text
    return r.json()


def test_definition_checked(dash: Dashboard) -> None:
    made = dash.group("react", "reactions", reactions=ITEMS, maxPerVoter=2)
    assert made["reactions"] == [
        {"id": "👍", "label": "Like"},
        {"id": "heart", "label": "Love"},
        {"id": "🎉", "label": "🎉"},
    ]
    assert made["maxPerVoter"] == 2 and made["start"] is None
    assert "reactions" not in dash.group("plain")
    bad: list[tuple[dict[str, Any], str]] = [
        ({}, "reactions"),
        ({"reactions": []}, "reactions"),
        ({"reactions": [{"id": "a"}, {"id": "a"}]}, "reactions.id"),
        ({"reactions": [{"id": ""}]}, "reactions.id"),
        ({"reactions": [{"id": 5}]}, "reactions.id"),
        ({"reactions": ITEMS, "maxPerVoter": 4}, "maxPerVoter"),
        ({"reactions": ITEMS, "maxPerVoter": 0}, "maxPerVoter"),
    ]
    for extra, field in bad:
        r = dash.post("/votes/", {"name": "other", "type": "reactions", **extra})
        assert r.status_code == 422, (extra, r.text)
        assert r.json()["statusCode"] == 422 and r.json()["field"] == field, r.text


def test_toggle_counts_and_redefine(server: Server, dash: Dashboard, clients: Any) -> None:
    group = dash.group("react", "reactions", reactions=ITEMS, maxPerVoter=2)
    pk = str(dash.keys()["publicKey"])
    c = clients()
    token = login(c, pk)
    assert react(c, token, "post", "alice", "👍")["ok"]
    assert react(c, token, "post", "alice", "heart")["ok"]
    assert react(c, token, "post", "bob", "heart")["ok"]
    refused = react(c, token, "post", "alice", "🎉")
    assert not refused["ok"] and refused["error"]["code"] == "too_many_reactions", refused
    refused = react(c, token, "post", "bob", "nope")
    assert not refused["ok"] and refused["error"]["code"] == "bad_value", refused
    total = {"reactions": {"👍": 1, "heart": 2, "🎉": 0}, "count": 3, "voters": 2}
    assert counts(server, pk, "post")["total"] == total
    state = requests.get(
        server.url + "/api/votes",
        params={"key": pk, "id": "react", "voteTo": "post", "userId": "alice"},
        timeout=TIMEOUT,
    ).json()
    assert state["voted"] is True and state["voteValue"] == ["👍", "heart"]
    shown = [{"id": "👍", "label": "Like"}, {"id": "heart", "label": "Love"}]
    assert state["reactions"][:2] == shown == counts(server, pk, "post")["reactions"][:2]
    assert state["total"] == total

    # relabel and reorder: the counts stay with their ids
    items = [{"id": "heart", "label": "<3"}, {"id": "🎉"}, {"id": "👍", "label": "+1"}]
    r = dash.put(f"/votes/{group['id']}", {"reactions": items})
    assert r.status_code == 200, r.text
    assert [x["id"] for x in r.json()["reactions"]] == ["heart", "🎉", "👍"]
    assert r.json()["maxPerVoter"] == 2
    moved = counts(server, pk, "post")["total"]["reactions"]
    assert list(moved) == ["heart", "🎉", "👍"] and moved == total["reactions"]
    # a removed id is refused
    r = dash.put(f"/votes/{group['id']}", {"reactions": items[:2], "maxPerVoter": 1})
    assert r.status_code == 200, r.text
    refused = react(c, token, "post", "bob", "👍")
    assert not refused["ok"] and refused["error"]["code"] == "bad_value", refused
    assert counts(server, pk, "post")["total"]["reactions"] == {"heart": 2, "🎉": 0}


def test_stats_top_items_per_reaction(dash: Dashboard, clients: Any) -> None:
    dash.group("react", "reactions", reactions=ITEMS, maxPerVoter=3)
    c = clients()
    token = login(c, str(dash.keys()["publicKey"]))
    for item, user, rid in [("a", "u1", "🎉"), ("b", "u1", "🎉"), ("b", "u2", "👍")]:
        assert react(c, token, item, user, rid)["ok"]
    stats = dash.get("/votes/react/stats").json()
    assert [t["voteTo"] for t in stats["top"]] == ["b", "a"]
    assert stats["top"][0]["reactions"] == {"👍": 1, "heart": 0, "🎉": 1}
    assert stats["top"][0]["count"] == 2 and stats["top"][0]["voters"] == 2


def test_stats_rank_items_by_reactions_held_or_by_one_reaction(
    dash: Dashboard, clients: Any
) -> None:
    dash.group("react", "reactions", reactions=ITEMS, maxPerVoter=3)
    c = clients()
    token = login(c, str(dash.keys()["publicKey"]))
    plan = [("few", "u1", "🎉")]  # one reaction (the bit set's highest value: 4)
    plan += [("two", "u1", "👍"), ("two", "u2", "👍")]  # two voters, two reactions
    plan += [("three", "u3", "👍"), ("three", "u3", "heart"), ("three", "u3", "🎉")]
    for item, user, rid in plan:
        assert react(c, token, item, user, rid)["ok"]
    stats = dash.get("/votes/react/stats").json()
    assert (stats["score"], stats["voters"], stats["items"]) == (6, 4, 3)  # reactions held
    top = stats["top"]
    assert [(t["voteTo"], t["count"]) for t in top] == [("three", 3), ("two", 2), ("few", 1)]
    assert top[0]["reactions"] == {"👍": 1, "heart": 1, "🎉": 1} and top[0]["voters"] == 1
    leading = dash.get("/votes/react/stats", params={"limit": 1}).json()["top"]
    assert [t["voteTo"] for t in leading] == ["three"]
    by_like = dash.get("/votes/react/stats", params={"reaction": "👍"}).json()["top"]
    assert [t["voteTo"] for t in by_like] == ["two", "three", "few"]
    by_party = dash.get("/votes/react/stats", params={"reaction": "🎉", "limit": 2}).json()
    assert [t["voteTo"] for t in by_party["top"]] == ["three", "few"]
    r = dash.get("/votes/react/stats", params={"reaction": "nope"})
    assert r.status_code == 422 and r.json()["field"] == "reaction", r.text
    assert "👍, heart, 🎉" in r.json()["message"]


def test_removed_ids_free_their_bits_once_no_voter_holds_them(
    server: Server, dash: Dashboard, clients: Any
) -> None:
    first = [{"id": f"a{i}"} for i in range(20)]
    group = dash.group("react", "reactions", reactions=first, maxPerVoter=20)
    pk = str(dash.keys()["publicKey"])
    c = clients()
    token = login(c, pk)
    for i in range(20):  # alice holds every first id on "post", bob a0 on "other"
        assert react(c, token, "post", "alice", f"a{i}")["ok"]
    assert react(c, token, "other", "bob", "a0")["ok"]
    later = [{"id": f"b{i}"} for i in range(11)]  # 31 ids over the group's life

    def define(items: list[dict[str, str]]) -> Any:
        return dash.put(f"/votes/{group['id']}", {"reactions": items, "maxPerVoter": 1})

    assert define(later).status_code == 200
    r = define([*later, {"id": ["odd"]}])  # checked as ever, full or not
    assert r.status_code == 422 and r.json()["field"] == "reactions.id", r.text
    r = define([*later, {"id": "new"}])
    assert r.status_code == 422 and r.json()["field"] == "reactions", r.text
    assert "at most 31 reaction ids" in r.json()["message"]
    assert "removed ids still held: a0, a1, a2" in r.json()["message"]
    assert define(first).status_code == 200  # alice lets go of a1..a19
    for i in range(1, 20):
        assert react(c, token, "post", "alice", f"a{i}")["ok"]
    assert define(later).status_code == 200
    r = define([*later, {"id": "new"}, {"id": "c"}])
    assert r.status_code == 200, r.text
    assert counts(server, pk, "post")["total"]["reactions"]["new"] == 0
    # a0 (still held by alice and bob) kept its bit and its counts
    assert define([{"id": "a0"}, {"id": "new"}]).status_code == 200
    assert counts(server, pk, "post")["total"]["reactions"] == {"a0": 1, "new": 0}
    assert counts(server, pk, "other")["total"]["reactions"] == {"a0": 1, "new": 0}


def test_the_limit_is_documented(server: Server) -> None:
    doc = requests.get(server.url + "/openapi.json", timeout=TIMEOUT).json()
    body = doc["paths"]["/votes/"]["post"]["requestBody"]["content"]["application/json"]
    said = body["schema"]["properties"]["reactions"]["description"]
    assert "at most 31 ids" in said and "while any voter holds it" in said
