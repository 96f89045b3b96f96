"""Malformed, oversized and out-of-order Socket.IO / Engine.IO frames on a raw websocket.

tests/app covers well-formed events with bad payloads; these go below python-socketio's
client: broken packets, events before the namespace connect, stray acks, binary junk.
The server must answer with an error or drop that one connection, and stay up.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
import websocket

from .conftest import TIMEOUT, Dashboard, Server, login, setup

ERR = "clickvote:error"


class Raw:
    def __init__(self, server: Server, namespace: bool = True) -> None:
        url = server.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
        self.ws = websocket.create_connection(url, timeout=TIMEOUT)
        opened = self.ws.recv()
        assert isinstance(opened, str) and opened.startswith("0"), opened
        if namespace:
            self.ws.send("40")
            assert self.recv().startswith("40")

    def recv(self) -> str:
        while True:
            frame = self.ws.recv()
            if frame == "2":  # engine.io ping
                self.ws.send("3")
                continue
            return frame if isinstance(frame, str) else frame.decode("latin-1")

    def ack(self, ack_id: int) -> Any:
        """The answer to ack id `ack_id`, or None if the server closed the connection."""
        prefix = f"43{ack_id}"
        while True:
            try:
                frame = self.recv()
            except (websocket.WebSocketConnectionClosedException, ConnectionError, OSError):
                return None
            if frame == "":  # closed
                return None
            if frame.startswith(prefix):
                return json.loads(frame[len(prefix) :])[0]

    def close(self) -> None:
        self.ws.close()


def still_serving(server: Server, dash: Dashboard, pk: str, clients: Any) -> None:
    assert requests.get(server.url + "/healthz", timeout=TIMEOUT).status_code == 200
    c = clients()
    t = login(c, pk)
    ok = c.call("vote", {"id": "raw", "voteTo": "x", "userId": "ok", "value": 1, "token": t})
    assert ok["ok"], ok


@pytest.fixture
def pk(dash: Dashboard) -> str:
    return setup(dash, "raw")


GARBAGE: list[str | bytes] = [
    "4",
    "42",
    "42not json",
    "42{}",
    "42[]",
    "42[1,2]",
    '42["nope",{}]',
    "43999[{}]",
    '45-["vote",{"_placeholder":true,"num":0}]',
    "9",
    "",
    "42" + "[" * 5000,
    b"\x00\x01\x02\xff",
]


@pytest.mark.parametrize("frame", GARBAGE, ids=lambda f: repr(f)[:24])
def test_garbage_frame_then_probe(
    server: Server, dash: Dashboard, pk: str, clients: Any, frame: str | bytes
) -> None:
    raw = Raw(server)
    try:
        if isinstance(frame, bytes):
            raw.ws.send_binary(frame)
        else:
            raw.ws.send(frame)
        # the same connection either answers a probe with an error ack or was dropped
        try:
            raw.ws.send('427["get-votes",null]')
        except (websocket.WebSocketConnectionClosedException, OSError):
            answer = None
        else:
            answer = raw.ack(7)
        if answer is not None:
            assert answer["ok"] is False and answer["error"]["code"] == "bad_payload", answer
    finally:
        raw.close()
    still_serving(server, dash, pk, clients)


@pytest.mark.parametrize(
    "frame, code",
    [
        ('421["vote"]', "bad_payload"),
        ('421["vote",null]', "bad_payload"),
        ('421["vote",{"id":"raw"},{"extra":1}]', "unauthorized"),
        ('421["login",{"apiKey":{"$ne":null}}]', "unknown_key"),
        ('421["get-votes",{"id":"raw","voteTo":"x","token":["a"]}]', "unauthorized"),
    ],
)
def test_odd_events_answer_errors(
    server: Server, dash: Dashboard, pk: str, clients: Any, frame: str, code: str
) -> None:
    raw = Raw(server)
    try:
        raw.ws.send(frame)
        answer = raw.ack(1)
        assert answer is not None and answer["ok"] is False, answer
        assert answer["error"]["code"] == code, answer
    finally:
        raw.close()
    still_serving(server, dash, pk, clients)


def test_event_before_namespace_connect(
    server: Server, dash: Dashboard, pk: str, clients: Any
) -> None:
    raw = Raw(server, namespace=False)
    try:
        raw.ws.send(f'421["login",{{"apiKey":"{pk}"}}]')  # out of order: no "40" yet
        # Socket.IO v5: a first packet that is not CONNECT closes the connection, unanswered
        assert raw.ack(1) is None
    finally:
        raw.close()
    still_serving(server, dash, pk, clients)


def test_oversized_frame_drops_only_that_connection(
    server: Server, dash: Dashboard, pk: str, clients: Any
) -> None:
    bystander = clients()
    t = login(bystander, pk)
    raw = Raw(server)
    try:
        big = '421["vote",{"id":"raw","voteTo":"' + "x" * 200_000 + '"}]'
        try:
            raw.ws.send(big)
            answer = raw.ack(1)
        except (websocket.WebSocketConnectionClosedException, OSError):
            answer = None
        assert answer is None, answer  # over the Engine.IO limit: closed (1009), not read
    finally:
        raw.close()
    ok = bystander.call("vote", {"id": "raw", "voteTo": "y", "userId": "b", "value": 1, "token": t})
    assert ok["ok"], ok
    still_serving(server, dash, pk, clients)
