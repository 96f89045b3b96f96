"""The abuse layers against a real server: the voter token, the IP + user-agent window, the
rate limits and proof of work each refuse what they should and let the rest through; their
settings over the API; the votes each refused in analytics.

Distinct client IPs come from X-Forwarded-For, which uvicorn trusts from 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clickvote import proof
from clickvote.client import proof_of_work
from clickvote.config import Settings
from clickvote.context import Context

from .conftest import Client, Dashboard, Server, setup

OFFICE = "198.51.100.20"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"


@pytest.fixture
def browser(server: Server) -> Iterator[Any]:
    made: list[Client] = []

    def make(ip: str = OFFICE, ua: str = FIREFOX) -> Client:
        c = Client(server.url, headers={"X-Forwarded-For": ip, "User-Agent": ua})
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def vote(c: Client, pk: str, user: str, item: str = "p", **extra: Any) -> dict[str, Any]:
    msg = {"id": "likes", "voteTo": item, "userId": user, "value": 1, "key": pk, **extra}
    return dict(c.call("vote", msg))


def code(answer: dict[str, Any]) -> str | None:
    return None if answer["ok"] else str(answer["error"]["code"])


def refused(dash: Dashboard) -> dict[str, int]:
    r = dash.get("/analytics/refusals?dateRange=1d")
    assert r.status_code == 200, r.text
    rows = r.json()
    assert len(rows) <= 1
    return {k: v for k, v in rows[0].items() if k not in ("day", "dayStart")} if rows else {}


def test_settings_show_and_take_the_layers(server: Server, dash: Dashboard) -> None:
    abuse = dash.keys()["abuse"]
    assert abuse["ipWindow"] == 3600 and abuse["powDifficulty"] == 0
    assert abuse["ipVoters"] == server.ctx.settings.ip_voters == 0  # CLICKVOTE_IP_VOTERS
    assert abuse["rateVoterBurst"] == abuse["rateVoterPerSec"] == 0  # the server's
    assert abuse["serverRateVoterBurst"] > 0 and abuse["serverRateVoterPerSec"] > 0
    chosen = {"ipWindow": 600, "ipVoters": 0, "powDifficulty": 12, "rateVoterPerSec": 0.5}
    r = dash.put("/settings/", chosen)
    assert r.status_code == 200, r.text
    assert r.json()["abuse"] == {**abuse, **chosen}
    assert r.json()["identities"] == dash.keys()["identities"]  # untouched
    r = dash.put("/settings/", {"identities": ["signed", "token"]})
    assert r.json()["abuse"]["powDifficulty"] == 12  # untouched


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"ipVoters": -1}, "ipVoters", "must be at least 0"),
        ({"ipWindow": 10}, "ipWindow", "must be at least 60"),
        ({"ipWindow": "1h"}, "ipWindow", "must be an integer"),
        ({"powDifficulty": 25}, "powDifficulty", "must be at most 24"),
        ({"powDifficulty": None}, "powDifficulty", "must be an integer"),
        ({"rateVoterPerSec": -1}, "rateVoterPerSec", "must be at least 0"),
        ({"rateVoterBurst": "many"}, "rateVoterBurst", "must be a number"),
    ],
)
def test_bad_layer_settings_name_their_field(
    dash: Dashboard, body: dict[str, Any], field: str, message: str
) -> None:
    r = dash.put("/settings/", body)
    assert r.status_code == 422, r.text
    assert (r.json()["field"], r.json()["message"]) == (field, f"{field}: {message}")
    assert dash.keys()["abuse"]["ipWindow"] == 3600  # nothing changed


def test_new_environments_take_the_configured_window(tmp_path: Path) -> None:
    def build(value: str) -> Context:
        env = {"CLICKVOTE_IP_VOTERS": value} if value else {}
        return Context.build(Settings.from_env(env, data_dir=str(tmp_path)))

    assert build("").new_env("dev", 0).abuse.ip_voters == 20  # generous: offices behind a NAT
    assert build("5").new_env("dev", 0).abuse.ip_voters == 5
    with pytest.raises(ValueError, match="CLICKVOTE_IP_VOTERS"):
        build("-1")


def test_the_window_refuses_one_browser_voting_as_many_voters(
    dash: Dashboard, browser: Any
) -> None:
    pk = setup(dash)
    assert dash.put("/settings/", {"ipVoters": 3}).status_code == 200
    c = browser()
    assert [code(vote(c, pk, f"u{i}")) for i in range(4)] == [None] * 3 + ["too_many_voters"]
    err = c.wait("clickvote:error")
    assert err["code"] == "too_many_voters" and "3 voters" in err["message"]
    assert code(vote(c, pk, "u1", value=0)) is None  # a voter already counted votes again
    assert code(vote(c, pk, "u4", item="q")) is None  # another item
    assert code(vote(browser(ua=CHROME), pk, "u4")) is None  # another browser on that address
    assert code(vote(browser(ip="203.0.113.5"), pk, "u5")) is None  # another address
    assert refused(dash)["ipWindow"] == 1


def test_the_default_window_lets_an_office_behind_one_address_vote(
    dash: Dashboard, browser: Any
) -> None:
    """Twenty people with the same browser behind one NAT all vote; the window is generous."""
    pk = setup(dash)
    assert dash.put("/settings/", {"ipVoters": Settings().ip_voters}).status_code == 200
    people = [browser() for _ in range(4)]
    answers = [code(vote(people[i % 4], pk, f"colleague{i}")) for i in range(20)]
    assert answers == [None] * 20
    assert code(vote(people[0], pk, "colleague20")) == "too_many_voters"
    assert dash.put("/settings/", {"ipVoters": 0}).status_code == 200  # off
    assert code(vote(people[0], pk, "colleague20")) is None


def test_the_token_and_rate_limit_layers_count_their_refusals(
    server: Server, dash: Dashboard, browser: Any
) -> None:
    pk = setup(dash)
    c = browser(ip="192.0.2.40")
    dash.put("/settings/", {"identities": ["token"]})
    assert code(vote(c, pk, "plain")) == "signature_required"
    dash.put("/settings/", {"identities": ["signed", "token", "unsigned"]})
    assert server.ctx.voter_limiter.burst > 2  # the environment's is stricter
    dash.put("/settings/", {"rateVoterBurst": 2, "rateVoterPerSec": 0.01})
    answers = [code(vote(c, pk, "eager", item=f"i{n}")) for n in range(4)]
    assert answers == [None, None, "rate_limited", "rate_limited"]
    assert code(vote(c, pk, "calm")) is None  # per voter
    assert refused(dash) == {"token": 1, "ipWindow": 0, "rateLimit": 2, "proofOfWork": 0}


def test_proof_of_work_before_a_first_vote(server: Server, dash: Dashboard, browser: Any) -> None:
    pk = setup(dash)
    c = browser(ip="192.0.2.50")
    assert c.call("challenge", {"key": pk})["difficulty"] == 0  # off by default
    assert code(vote(c, pk, "free")) is None
    assert dash.put("/settings/", {"powDifficulty": 8}).status_code == 200
    answer = vote(c, pk, "worker")
    assert code(answer) == "proof_of_work_required"
    assert "emit `challenge`" in answer["error"]["message"]
    assert c.wait("clickvote:error")["code"] == "proof_of_work_required"
    issued = c.call("challenge", {"key": pk})
    assert issued["ok"] and issued["difficulty"] == 8
    assert c.wait("challenge")["challenge"] == issued["challenge"]  # also as an event
    solved = proof_of_work(issued)
    assert code(vote(c, pk, "worker", pow=solved)) is None
    assert code(vote(c, pk, "worker", item="q")) is None  # the socket is trusted now
    assert code(vote(browser(ip="192.0.2.51"), pk, "worker", item="r")) is None  # the voter too
    replay = vote(browser(ip="192.0.2.52"), pk, "copycat", pow=solved)
    assert code(replay) == "proof_of_work_required"
    assert "already used" in replay["error"]["message"]
    assert refused(dash)["proofOfWork"] == 2


def test_login_says_whether_a_first_vote_needs_proof_of_work(
    server: Server, dash: Dashboard, browser: Any
) -> None:
    """The hint a client reads before asking for a challenge: the environment's bits, 0 off."""
    pk = setup(dash)
    c = browser(ip="192.0.2.60")
    assert c.call("login", {"apiKey": pk})["proofOfWork"] == 0
    assert c.wait("login")["proofOfWork"] == 0  # the event carries it too
    assert dash.put("/settings/", {"powDifficulty": 8}).status_code == 200
    assert c.call("login", {"apiKey": pk})["proofOfWork"] == 8
    assert dash.put("/settings/", {"powDifficulty": 0}).status_code == 200
    assert c.call("login", {"apiKey": pk})["proofOfWork"] == 0


def test_forged_expired_and_unworked_solutions_are_refused(
    server: Server, dash: Dashboard, browser: Any
) -> None:
    pk = setup(dash)
    dash.put("/settings/", {"powDifficulty": 8})
    c = browser(ip="192.0.2.60")
    good = proof_of_work(c.call("challenge", {"key": pk}))
    assert good is not None
    env_id = dash.keys()["env"]["id"]
    old = proof.issue(server.ctx.box, env_id, 8, now=1_000_000)
    lazy = next(n for n in range(10_000) if proof.work(good["challenge"], n) < 8)
    other_pk = setup(Dashboard(server.url))
    elsewhere = proof_of_work(c.call("challenge", {"key": other_pk}))
    bad = {
        "forged": {
            **good,
            "challenge": good["challenge"][:-2]
            + ("11" if good["challenge"].endswith("00") else "00"),
        },
        "expired": proof_of_work(old),
        "unworked": {**good, "counter": lazy},
        "elsewhere": elsewhere,
        "malformed": {"challenge": 5},
    }
    for why, solution in bad.items():
        answer = vote(c, pk, f"v-{why}", pow=solution)
        assert code(answer) == "proof_of_work_required", (why, answer)
    assert code(vote(c, pk, "v-good", pow=good)) is None  # not spent by the refusals above
    assert refused(dash)["proofOfWork"] == len(bad)


def test_a_retried_vote_on_a_refused_layer_is_not_stored(dash: Dashboard, browser: Any) -> None:
    pk = setup(dash)
    dash.put("/settings/", {"powDifficulty": 8})
    c = browser(ip="192.0.2.70")
    assert code(vote(c, pk, "late", msgId="m1")) == "proof_of_work_required"
    state = c.call("get-votes", {"id": "likes", "voteTo": "p", "key": pk, "userId": "late"})
    assert state["voted"] is False and state["total"]["count"] == 0
    solved = proof_of_work(c.call("challenge", {"key": pk}))
    assert vote(c, pk, "late", msgId="m1", pow=solved)["total"]["count"] == 1


def test_storage_failing_to_count_refusals_fails_no_vote(
    server: Server, dash: Dashboard, browser: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refusals are counted in memory; storing them failing changes no answer, and the counts
    are kept for the next batch."""
    pk = setup(dash)
    dash.put("/settings/", {"ipVoters": 1})
    c = browser(ip="192.0.2.80")

    async def broken(rows: list[Any]) -> None:
        raise OSError("database away")

    monkeypatch.setattr(server.ctx.storage, "add_refusals", broken)
    assert code(vote(c, pk, "one")) is None
    assert code(vote(c, pk, "two")) == "too_many_voters"
    assert dash.get("/analytics/refusals?dateRange=1d").json() == []  # not stored yet
    assert code(vote(c, pk, "one", item="q")) is None
    monkeypatch.undo()
    assert refused(dash)["ipWindow"] == 1
