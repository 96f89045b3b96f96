"""Engine.IO transports (clickvote.engineio): long-polling, the upgrade to a WebSocket, the
heartbeat, and what a broken or hostile client gets. python-socketio's client is the peer
where a real client is wanted; raw HTTP and WebSocket frames where a broken one is."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import socketio
import websocket
from services import free_port, start_uvicorn

from clickvote.sio import SocketServer

from .conftest import TIMEOUT, Dashboard, Server, setup

SEP = "\x1e"


def client(url: str, transports: list[str]) -> tuple[socketio.Client, list[tuple[str, Any]]]:
    c = socketio.Client(reconnection=False)
    seen: list[tuple[str, Any]] = []
    c.on("*", lambda event, *args: seen.append((event, args[0] if args else None)))
    c.connect(url, transports=transports, wait_timeout=TIMEOUT)
    return c, seen


def wait_for(cond: Any, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not cond():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


@pytest.mark.parametrize("transports", [["polling"], ["polling", "websocket"]])
def test_votes_and_broadcasts_over_polling_and_after_the_upgrade(
    server: Server, dash: Dashboard, transports: list[str]
) -> None:
    pk = setup(dash, "tp")
    voter, _ = client(server.url, transports)
    watcher, seen = client(server.url, ["polling"])
    try:
        if "websocket" in transports:  # socket.io's client upgrades in the background
            wait_for(lambda: voter.transport() == "websocket", "no upgrade to websocket")
        else:
            assert voter.transport() == "polling"
        token = voter.call("login", {"apiKey": pk}, timeout=TIMEOUT)["token"]
        got = watcher.call("get-votes", {"id": "tp", "voteTo": "a", "key": pk}, timeout=TIMEOUT)
        assert got["ok"] and got["total"]["count"] == 0, got
        for i in range(5):
            ack = voter.call(
                "vote",
                {"id": "tp", "voteTo": "a", "userId": f"p{i}", "value": 1, "token": token},
                timeout=TIMEOUT,
            )
            assert ack["ok"] and ack["total"]["count"] == i + 1, ack
        wait_for(
            lambda: [d["total"]["count"] for e, d in seen if e == "get-votes-tp-a"][-1:] == [5],
            f"watcher saw {seen}",
        )
        counts = [d["total"]["count"] for e, d in seen if e == "get-votes-tp-a" and "poster" in d]
        # the first at once, then at most one per broadcast window, ending on the newest
        assert counts[0] == 1 and counts[-1] == 5 and counts == sorted(set(counts)), counts
    finally:
        voter.disconnect()
        watcher.disconnect()


def handshake(url: str, **headers: str) -> tuple[str, dict[str, Any], requests.Response]:
    r = requests.get(f"{url}/socket.io/?EIO=4&transport=polling", headers=headers, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    assert r.text.startswith("0"), r.text
    opened = json.loads(r.text[1:])
    return opened["sid"], opened, r


def test_polling_handshake_and_cors(server: Server) -> None:
    sid, opened, r = handshake(server.url, Origin="https://blog.example")
    assert opened["upgrades"] == ["websocket"]
    assert opened["pingInterval"] > 0 and opened["pingTimeout"] > 0 and opened["maxPayload"] > 0
    assert r.headers["access-control-allow-origin"] == "*"  # any page; never its cookies
    assert "access-control-allow-credentials" not in r.headers
    pre = requests.options(
        f"{server.url}/socket.io/?EIO=4&transport=polling&sid={sid}",
        headers={"Origin": "https://blog.example", "Access-Control-Request-Headers": "x-a"},
        timeout=TIMEOUT,
    )
    assert pre.status_code == 204 and pre.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in pre.headers
    assert "POST" in pre.headers["access-control-allow-methods"]
    assert pre.headers["access-control-allow-headers"] == "x-a"


def test_polling_session_speaks_socketio(server: Server) -> None:
    sid, _, _ = handshake(server.url)
    url = f"{server.url}/socket.io/?EIO=4&transport=polling&sid={sid}"
    r = requests.post(url, data="40" + SEP + '421["nope",{}]', timeout=TIMEOUT)
    assert r.status_code == 200 and r.text == "ok"
    packets = requests.get(url, timeout=TIMEOUT).text.split(SEP)
    assert packets[0].startswith("40{"), packets
    assert any(p.startswith('42["clickvote:error"') and "unknown_event" in p for p in packets)
    ack = next(p for p in packets if p.startswith("431"))
    assert json.loads(ack[3:])[0]["error"]["code"] == "unknown_event"


@pytest.mark.parametrize(
    "query, status, code",
    [
        ("EIO=3&transport=polling", 400, 5),
        ("EIO=4&transport=carrier-pigeon", 400, 0),
        ("EIO=4&transport=polling&sid=nobody", 400, 1),
    ],
)
def test_bad_polling_requests_get_json_errors(
    server: Server, query: str, status: int, code: int
) -> None:
    r = requests.get(f"{server.url}/socket.io/?{query}", timeout=TIMEOUT)
    assert r.status_code == status
    assert r.json()["code"] == code and r.json()["message"]


def test_oversized_post_closes_only_that_session(server: Server) -> None:
    sid, opened, _ = handshake(server.url)
    url = f"{server.url}/socket.io/?EIO=4&transport=polling&sid={sid}"
    r = requests.post(url, data="4" + "x" * (opened["maxPayload"] + 1), timeout=TIMEOUT)
    assert r.status_code == 413
    assert requests.get(url, timeout=TIMEOUT).json()["code"] == 1  # session gone
    other, _, _ = handshake(server.url)
    assert other != sid


def test_second_concurrent_poll_is_refused(server: Server) -> None:
    sid, _, _ = handshake(server.url)
    url = f"{server.url}/socket.io/?EIO=4&transport=polling&sid={sid}"
    results: list[requests.Response] = []
    first = threading.Thread(target=lambda: results.append(requests.get(url, timeout=TIMEOUT)))
    first.start()
    time.sleep(0.3)  # the first GET is now waiting for something to send
    second = requests.get(url, timeout=TIMEOUT)
    first.join(TIMEOUT)
    assert second.status_code == 400
    assert results and results[0].text.endswith("1")  # the waiting one learns of the close


def test_upgrade_probe_then_websocket(server: Server) -> None:
    sid, _, _ = handshake(server.url)
    base = f"{server.url}/socket.io/?EIO=4&transport=polling&sid={sid}"
    ws = websocket.create_connection(
        base.replace("http://", "ws://").replace("polling", "websocket"), timeout=TIMEOUT
    )
    try:
        ws.send("2probe")
        assert ws.recv() == "3probe"
        assert requests.get(base, timeout=TIMEOUT).text == "6"  # the noop frees the poll
        ws.send("5")
        ws.send("40")
        assert ws.recv().startswith("40{")
        assert requests.get(base, timeout=TIMEOUT).json()["code"] == 1  # no polling anymore
    finally:
        ws.close()


@pytest.fixture
def quick_pings() -> Iterator[str]:
    """A bare Socket.IO server with a 0.3 s heartbeat, and an `echo` event."""
    sio = SocketServer(ping_interval=0.3, ping_timeout=0.3)
    sio.on_connect = lambda sid, peer, auth: True

    async def echo(sid: str, args: list[Any], wants_ack: bool) -> Any:
        return args[0] if args else None

    sio.on("echo", echo)
    port = free_port()
    srv, thread = start_uvicorn(sio, port)
    yield f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"
    srv.should_exit = True
    thread.join(timeout=10)


def test_a_client_that_answers_pings_stays(quick_pings: str) -> None:
    ws = websocket.create_connection(quick_pings, timeout=TIMEOUT)
    try:
        assert ws.recv().startswith("0")
        ws.send("40")
        assert ws.recv().startswith("40")
        pings = 0
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            frame = ws.recv()
            if frame == "2":
                pings += 1
                ws.send("3")
        assert pings >= 3
        ws.send('421["echo",{"still":"here"}]')
        while (frame := ws.recv()) == "2":
            ws.send("3")
        assert frame == '431[{"still":"here"}]'
    finally:
        ws.close()


def test_a_client_that_never_pongs_is_dropped(quick_pings: str) -> None:
    ws = websocket.create_connection(quick_pings, timeout=TIMEOUT)
    try:
        assert ws.recv().startswith("0")
        frames = []
        deadline = time.monotonic() + TIMEOUT
        with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError)):
            while time.monotonic() < deadline:
                frame = ws.recv()
                if frame == "":  # close frame
                    raise ConnectionError("closed")
                frames.append(frame)
        assert frames == ["2"]
    finally:
        ws.close()


def test_binary_event_is_refused_and_its_attachment_skipped(server: Server) -> None:
    ws = websocket.create_connection(
        server.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket",
        timeout=TIMEOUT,
    )
    try:
        assert ws.recv().startswith("0")
        ws.send("40")
        assert ws.recv().startswith("40")
        ws.send('451-3["vote",{"_placeholder":true,"num":0}]')
        ws.send_binary(b"\x00\x01")
        ws.send('424["get-votes",null]')
        answers = {}
        while len(answers) < 2:
            frame = ws.recv()
            if frame == "2":
                ws.send("3")
            elif frame.startswith("43"):
                answers[frame[2]] = json.loads(frame[3:])[0]
        assert answers["3"]["error"]["code"] == "bad_payload"
        assert "binary" in answers["3"]["error"]["message"]
        assert answers["4"]["error"]["code"] == "bad_payload"  # the next event, answered
    finally:
        ws.close()
