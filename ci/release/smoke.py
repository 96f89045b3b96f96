"""Smoke test of a running ClickVote server: HTTP API, Socket.IO voting, persistence.

The server runs in a container with ``--network host`` on a free 127.0.0.1 port;
this module talks to it from the host. ``first_half`` registers, creates a vote
group and votes over Socket.IO; after the caller restarts the container,
``second_half`` checks that the totals survived.
"""

from __future__ import annotations

import contextlib
import queue
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import requests

from clickvote.client import Client, free_port

__all__ = ["GROUP", "Check", "Smoke", "VoteSocket", "free_port"]

GROUP = "release-smoke"
VOTE_TO = "item-1"
VOTERS = ("voter-1", "voter-2")


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""
    seconds: float = 0.0


@dataclass
class Smoke:
    port: int
    timeout: float = 60.0
    checks: list[Check] = field(default_factory=list)
    public_key: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def step(self, name: str, fn: Callable[[], str]) -> bool:
        """Run one check unless an earlier one failed; record the outcome."""
        if self.checks and not self.checks[-1].ok:
            self.checks.append(Check(name, False, "not run: an earlier check failed"))
            return False
        t0 = time.monotonic()
        try:
            detail, ok = fn(), True
        except Exception as e:  # any failure is the check's result
            detail, ok = f"{type(e).__name__}: {e}", False
        self.checks.append(Check(name, ok, detail, round(time.monotonic() - t0, 2)))
        return ok

    def wait_healthy(self, alive: Callable[[], bool] = lambda: True, interval: float = 0.5) -> str:
        deadline = time.monotonic() + self.timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if not alive():
                raise RuntimeError("the container exited")
            try:
                r = requests.get(f"{self.url}/healthz", timeout=5)
                if r.status_code == 200:
                    return r.text.strip()[:200]
                last = f"HTTP {r.status_code}"
            except requests.RequestException as e:
                last = type(e).__name__
            time.sleep(interval)
        raise TimeoutError(f"/healthz did not answer 200 within {self.timeout:.0f}s ({last})")

    def register(self) -> str:
        http = requests.Session()
        email = f"release-{secrets.token_hex(4)}@example.invalid"
        r = http.post(
            f"{self.url}/auth/register",
            json={"email": email, "password": secrets.token_urlsafe(16)},
            timeout=30,
        )
        _ok(r, "POST /auth/register")
        # double-submit CSRF protection: echo the cookie in a header
        http.headers["X-CSRF-Token"] = http.cookies.get("csrftoken") or ""
        r = http.get(f"{self.url}/settings/", timeout=30)
        _ok(r, "GET /settings/")
        self.public_key = r.json()["publicKey"]
        r = http.post(f"{self.url}/votes/", json={"name": GROUP, "type": "single"}, timeout=30)
        _ok(r, "POST /votes/")
        return f"registered {email}, created group {GROUP}"

    def vote(self) -> str:
        with self.socket() as ws:
            token = ws.login(self.public_key)
            for voter in VOTERS:
                ws.emit(
                    "vote",
                    {
                        "id": GROUP,
                        "voteTo": VOTE_TO,
                        "userId": voter,
                        "type": "single",
                        "value": 1,
                        "token": token,
                    },
                )
            count = ws.count_until(token, len(VOTERS))
        return f"{len(VOTERS)} votes over Socket.IO, count {count}"

    def totals_survived(self) -> str:
        with self.socket() as ws:
            token = ws.login(self.public_key)
            count = ws.count_until(token, len(VOTERS))
        return f"count {count} after restart"

    @contextlib.contextmanager
    def socket(self) -> Iterator[VoteSocket]:
        ws = VoteSocket(self.url, self.public_key, self.timeout)
        try:
            yield ws
        finally:
            ws.close()


def _ok(r: requests.Response, what: str) -> None:
    if not 200 <= r.status_code < 300:
        raise RuntimeError(f"{what} answered {r.status_code}: {r.text[:200]}")


class VoteSocket:
    """A Socket.IO client speaking the original @clickvote/react protocol."""

    def __init__(self, url: str, public_key: str, timeout: float) -> None:
        self.timeout = timeout
        self.client = Client(url, auth={"token": f"{public_key}:{VOTERS[0]}"}, timeout=timeout)
        self.events = self.client.events

    def emit(self, event: str, data: dict[str, Any]) -> None:
        self.client.emit(event, data)

    def expect(self, event: str, timeout: float | None = None) -> Any:
        deadline = time.monotonic() + (timeout or self.timeout)
        while (left := deadline - time.monotonic()) > 0:
            try:
                name, data = self.events.get(timeout=left)
            except queue.Empty:
                break
            if name == event:
                return data
            if "error" in name:
                raise RuntimeError(f"server sent {name}: {data}")
        raise TimeoutError(f"no {event!r} event within {timeout or self.timeout:.0f}s")

    def login(self, public_key: str) -> str:
        self.emit("login", {"apiKey": public_key})
        data = self.expect("login")
        return str(data["token"])

    def count_until(self, token: str, want: int, attempts: int = 10) -> int:
        """Ask for the totals until ``count`` reaches ``want`` (bounded)."""
        count = None
        for _ in range(attempts):
            self.emit(
                "get-votes",
                {
                    "id": GROUP,
                    "voteTo": VOTE_TO,
                    "userId": VOTERS[0],
                    "type": "single",
                    "token": token,
                },
            )
            data = self.expect(f"get-votes-{GROUP}-{VOTE_TO}")
            count = (data.get("total") or {}).get("count")
            if count == want:
                return int(count)
            time.sleep(0.5)
        raise AssertionError(f"count is {count}, expected {want}")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()
