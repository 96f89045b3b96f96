"""clickvote.client: the one client the suite, the benchmarks and the release smoke test
drive a server with, its free port and the settings that take the rate limits away."""

from __future__ import annotations

import queue
import socket
import time
from typing import Any

import pytest

from clickvote import client
from clickvote.config import Settings

from .conftest import TIMEOUT, Dashboard, Server, setup


def test_limits_off_env_is_what_a_server_process_reads() -> None:
    settings = Settings.from_env(client.limits_off_env())
    for name, value in client.LIMITS_OFF.items():
        assert getattr(settings, name) == value, name
    assert settings.rate_voter_burst >= 1_000_000 and settings.rate_ip_per_sec >= 1_000_000


def test_free_port_is_free_on_localhost() -> None:
    port = client.free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # raises if something holds it


def next_event(c: client.Client, name: str, count: int | None = None) -> Any:
    """The next `name` event (with that total count, if given); others are dropped."""
    deadline = time.monotonic() + TIMEOUT
    while (left := deadline - time.monotonic()) > 0:
        try:
            got, data = c.events.get(timeout=left)
        except queue.Empty:
            break
        if got == name and (count is None or data["total"]["count"] == count):
            return data
    raise AssertionError(f"no {name!r} within {TIMEOUT}s")


def test_blocking_client_acks_events_and_close(dash: Dashboard, server: Server) -> None:
    pk = setup(dash, "cl-likes")
    voter = client.Client(server.url, auth={"token": f"{pk}:alice"}, timeout=TIMEOUT)
    watcher = client.Client(server.url, timeout=TIMEOUT)
    try:
        assert voter.connected and watcher.connected
        token = voter.call("login", {"apiKey": pk})["token"]
        msg = {"id": "cl-likes", "voteTo": "p", "userId": "alice", "token": token}
        assert watcher.call("get-votes", {**msg, "userId": "bob"})["ok"]
        voter.emit("vote", {**msg, "value": 1})  # no ack: the state comes as an event
        assert next_event(voter, "get-votes-cl-likes-p")["voteValue"] == 1
        assert next_event(watcher, "get-votes-cl-likes-p", count=1)["poster"] == {"value": 1}
        voter.emit("vote", {"id": "cl-likes"})  # bad input: an error event, connection kept
        assert next_event(voter, "clickvote:error")["code"]
        assert voter.call("get-votes", msg)["voteValue"] == 1
    finally:
        voter.close()
        watcher.close()
    deadline = time.monotonic() + TIMEOUT
    while voter.connected and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not voter.connected


def test_blocking_client_refused() -> None:
    with pytest.raises(ConnectionError):
        client.Client(f"http://127.0.0.1:{client.free_port()}", timeout=5)
