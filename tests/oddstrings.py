"""Arbitrary Unicode (NUL and lone surrogates included) into every text field of every JSON
endpoint and real-time event of a running server: no 5xx, no `internal` error, no traceback
in the log. Shared by the SQLite (tests/app) and PostgreSQL (tests/scale) runs."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from services import CLIENT_TIMEOUT, Client

# what no back end can store, then anything at all
FIXED = ("\x00", "\ud800", "a\x00b", "x\udfff", "\udbff\udc00\ud800")
ODD = st.text(st.characters(exclude_categories=()), max_size=12) | st.sampled_from(FIXED)

Target = tuple[str, Callable[[str], Any]]


def q(value: str) -> str:
    """Percent-encoded as a browser would, lone surrogates as their UTF-8-like bytes."""
    return quote(value, safe="", errors="surrogatepass")


class Site:
    """A registered dashboard user with two groups, a public key and a real-time client."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = requests.Session()
        email = f"odd{uuid.uuid4().hex[:12]}@example.com"
        r = self.http.post(f"{url}/auth/register", json={"email": email, "password": "pw123456"})
        assert r.status_code == 200, r.text
        self.http.headers["X-CSRF-Token"] = str(self.http.cookies["csrftoken"])
        for name in ("likes", "other"):
            r = self.send("POST", "/votes/", {"name": name, "type": "single"})
            assert r.status_code == 200, r.text
        self.other = r.json()["id"]
        self.pk = str(self.send("GET", "/settings/").json()["publicKey"])
        self.client = Client(url)
        self.token = self.client.login(self.pk)

    def send(self, method: str, path: str, body: Any = None) -> requests.Response:
        r = self.http.request(method, self.url + path, json=body, timeout=CLIENT_TIMEOUT)
        for cookie in ("org", "env"):  # stay in the first organisation and environment
            self.http.cookies.set(cookie, None)
        return r

    def close(self) -> None:
        self.client.close()


def http_targets(site: Site) -> list[Target]:
    def body(method: str, path: str, base: dict[str, Any], field: str) -> Target:
        return f"{method} {path} {field}", lambda v: site.send(method, path, {**base, field: v})

    def query(path: str, base: dict[str, str], field: str) -> Target:
        def call(v: str) -> requests.Response:
            params = "&".join(f"{k}={q(x)}" for k, x in {**base, field: v}.items())
            return site.send("GET", f"{path}?{params}")

        return f"GET {path} ?{field}", call

    def path(method: str, template: str) -> Target:
        return f"{method} {template}", lambda v: site.send(method, template.format(q(v)))

    creds = {"email": "someone@example.com", "password": "pw123456"}
    public = {"key": site.pk, "id": "likes", "voteTo": "p", "userId": "u"}
    out: list[Target] = []
    for p in ("/auth/register", "/auth/login"):
        out += [body("POST", p, creds, f) for f in creds]
    out += [
        body("PUT", "/org/update", {}, "name"),
        body("POST", "/org/create", {}, "name"),
        body("POST", "/org/switch", {}, "id"),
        body("POST", "/env/switch", {}, "id"),
        body("PUT", "/settings/", {}, "requireSigned"),
        body("POST", "/votes/", {"type": "single"}, "name"),
        body("POST", "/votes/", {"name": "n"}, "type"),
        body("PUT", f"/votes/{site.other}", {}, "name"),
        body("PUT", f"/votes/{site.other}", {}, "type"),
        path("GET", "/votes/{}"),
        path("PUT", "/votes/{}"),
        path("DELETE", "/votes/{}"),
        path("GET", "/votes/{}/analytics"),
        path("GET", "/votes/{}/to"),
        path("GET", "/votes/{}/stats"),
        query("/votes/likes/analytics", {}, "dateRange"),
        query("/votes/likes/analytics", {}, "voteTo"),
        query("/votes/likes/stats", {}, "limit"),
        query("/votes/", {}, "page"),
        query("/analytics/data", {}, "dateRange"),
        query("/analytics/data", {}, "group"),
        query("/analytics/data", {}, "voteTo"),
        query("/api/voter-token", {}, "key"),
    ]
    out += [query("/api/votes", public, f) for f in (*public, "signature", "voterToken")]
    return out


def event_targets(site: Site) -> list[Target]:
    def event(name: str, base: dict[str, Any], field: str) -> Target:
        return f"{name} {field}", lambda v: site.client.call(name, {**base, field: v})

    def handshake(v: str) -> Any:  # the page's key as it connects, then no token
        c = Client(site.url, auth={"token": f"pb_{v}:u"})
        try:
            return c.call("get-votes", {"id": "likes", "voteTo": "p"})
        finally:
            c.close()

    get = {"id": "likes", "voteTo": "p", "userId": "u", "token": site.token}
    vote = {**get, "value": 1, "msgId": "m"}
    fields = ("id", "voteTo", "userId", "token", "key", "signature", "voterToken")
    return [
        ("handshake auth token", handshake),
        event("login", {}, "apiKey"),
        *(event("get-votes", get, f) for f in fields),
        *(event("vote", vote, f) for f in (*fields, "msgId", "value")),
    ]


def refused_properly(name: str, answer: Any) -> str | None:
    """What is wrong with an answer (None: a success or a clear refusal)."""
    if isinstance(answer, requests.Response):
        if answer.status_code >= 500 or "json" not in answer.headers.get("content-type", ""):
            return f"{name}: HTTP {answer.status_code} {answer.text[:120]}"
        return None
    if not isinstance(answer, dict) or "ok" not in answer:
        return f"{name}: {answer!r}"
    if not answer["ok"] and answer["error"]["code"] == "internal":
        return f"{name}: internal error"
    return None


class Tracebacks(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append(f"{record.name}: {record.getMessage()[:200]}")


@contextmanager
def watching_logs() -> Iterator[Tracebacks]:
    handler = Tracebacks()
    loggers = [logging.getLogger(), logging.getLogger("uvicorn"), logging.getLogger("clickvote")]
    for lg in loggers:
        lg.addHandler(handler)
    try:
        yield handler
    finally:
        for lg in loggers:
            lg.removeHandler(handler)


def check_every_field(url: str, examples: int) -> None:
    """Each field of each target gets FIXED, then `examples` generated strings."""
    site = Site(url)
    problems: list[str] = []

    def fuzz(name: str, send: Callable[[str], Any]) -> None:
        @given(value=ODD)
        @settings(
            max_examples=examples,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        def generated(value: str) -> None:
            problems.append(refused_properly(name, send(value)) or "")

        generated()

    try:
        with watching_logs() as logs:
            for name, send in http_targets(site) + event_targets(site):
                for value in FIXED:
                    problems.append(refused_properly(name, send(value)) or "")
                fuzz(name, send)
            assert site.client.connected  # the connection survived all of it
    finally:
        site.close()
    problems = [p for p in problems if p]
    assert not problems, problems[:10]
    assert not logs.seen, logs.seen[:5]


# characters at the edges of what text columns take
EDGES = ("\x00", "\x01", "\x7f", "é", "\ufeff", "\uffff", "\U0010ffff", "😀", "\ud800", "\udc00")


def accepted(url: str) -> list[tuple[str, bool]]:
    """Which of EDGES a vote's voteTo, a vote group's name and a user id take, stored and
    read back as sent."""
    site = Site(url)
    out: list[tuple[str, bool]] = []
    try:
        for i, ch in enumerate(EDGES):
            to, name, user = f"item{ch}", f"group{i}{ch}", f"user{ch}"
            ack = site.client.call(
                "vote",
                {"id": "likes", "voteTo": to, "userId": user, "value": 1, "token": site.token},
            )
            got = site.client.call(
                "get-votes", {"id": "likes", "voteTo": to, "userId": user, "token": site.token}
            )
            out.append((f"voteTo+userId {ch!r}", bool(ack["ok"] and got["voteValue"] == 1)))
            r = site.send("POST", "/votes/", {"name": name, "type": "single"})
            stored = r.status_code == 200 and site.send("GET", f"/votes/{q(name)}/to").ok
            out.append((f"group name {ch!r}", stored))
    finally:
        site.close()
    return out
