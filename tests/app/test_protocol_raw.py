"""Engine.IO v4 and Socket.IO v5, as socket.io publishes their protocol documents, checked with
raw HTTP requests and raw WebSocket frames (no Socket.IO client library) against a bare
clickvote.sio.SocketServer with short heartbeats. Each test names the clause it checks:
"EIO" for the Engine.IO document, "SIO" for the Socket.IO one, then its section.

Not checked here, and why: what the documents ask of clients (pause polling before an
upgrade, send the sid, batch by maxPayload, give up without a ping within pingInterval +
pingTimeout, start with long-polling); binary over long-polling as application/octet-stream
(v4 payloads carry binary as base64 text, which is checked); binary messages sent by the
server, custom and several namespaces, acks the server asks for (ClickVote has none of them:
namespace "/", text events, one-argument acks). Two behaviours of the reference server's own
test suite that the documents do not ask for are left as they are: a cancelled GET does not
end the session (the heartbeat does; watching every poll for a disconnect costs a task per
poll), and a close packet POSTed while a GET waits answers that GET with the close packet
rather than a noop.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import websocket
from services import free_port, start_uvicorn

from clickvote.app import create_app
from clickvote.config import Settings
from clickvote.sio import SocketServer

from .conftest import TIMEOUT

SEP = "\x1e"
OPEN_PATH = "/socket.io/?EIO=4&transport=polling"
CLOSED = (websocket.WebSocketConnectionClosedException, ConnectionError, OSError)


@dataclass
class Srv:
    """A bare Socket.IO server: `echo` acks its argument, `flood` sends {n} events of {size}
    characters, `hold` waits (without an ack) until `release` is set; `disconnects` records
    (time, sid) as sockets leave."""

    url: str
    sio: SocketServer
    entered: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    auths: list[Any] = field(default_factory=list)
    disconnects: list[tuple[float, str]] = field(default_factory=list)

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"

    def poll_url(self, sid: str) -> str:
        return f"{self.url}/socket.io/?EIO=4&transport=polling&sid={sid}"


def make_server(**settings: Any) -> tuple[Srv, Callable[[], None]]:
    sio = SocketServer(**settings)
    srv = Srv("", sio)

    def on_connect(sid: str, peer: Any, auth: Any) -> bool:
        srv.auths.append(auth)
        return not (isinstance(auth, dict) and auth.get("reject"))

    async def echo(sid: str, args: list[Any], wants_ack: bool) -> Any:
        return args[0] if args else None

    async def flood(sid: str, args: list[Any], wants_ack: bool) -> None:
        for i in range(args[0]["n"]):
            sio.send(sid, "flood", {"i": i, "pad": "x" * args[0]["size"]})

    async def hold(sid: str, args: list[Any], wants_ack: bool) -> None:
        srv.entered.set()
        deadline = time.monotonic() + TIMEOUT
        while not srv.release.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    sio.on_connect = on_connect
    sio.on_disconnect = lambda sid: srv.disconnects.append((time.monotonic(), sid))
    sio.on("echo", echo)
    sio.on("flood", flood)
    sio.on("hold", hold)
    port = free_port()
    uv, thread = start_uvicorn(sio, port)
    srv.url = f"http://127.0.0.1:{port}"

    def stop() -> None:
        uv.should_exit = True
        thread.join(timeout=10)

    return srv, stop


@pytest.fixture(scope="module")
def servers() -> Iterator[Callable[..., Srv]]:
    """Servers by their settings, started once per module."""
    made: dict[tuple[tuple[str, Any], ...], tuple[Srv, Callable[[], None]]] = {}

    def get(**settings: Any) -> Srv:
        key = tuple(sorted(settings.items()))
        if key not in made:
            made[key] = make_server(**settings)
        return made[key][0]

    yield get
    for _, stop in made.values():
        stop()


CALM = {"ping_interval": 5.0, "ping_timeout": 5.0, "connect_timeout": 5.0}
QUICK = {"ping_interval": 0.2, "ping_timeout": 0.3, "connect_timeout": 0.3}
# Pings as often, each pong given time: a busy emulated machine can take longer than 0.3 s
# to answer, which the tests of a client that keeps pong-ing must not count against it.
PINGING = {"ping_interval": 0.2, "ping_timeout": 5.0, "connect_timeout": 5.0}


@pytest.fixture
def srv(servers: Callable[..., Srv]) -> Srv:
    """Heartbeats far apart: for everything but the heartbeat itself."""
    return servers(**CALM)


@pytest.fixture
def pinging(servers: Callable[..., Srv]) -> Srv:
    """A ping every 0.2 s, 5 s for its pong."""
    return servers(**PINGING)


@pytest.fixture
def quick(servers: Callable[..., Srv]) -> Srv:
    """A ping every 0.2 s, 0.3 s for its pong, 0.3 s to CONNECT."""
    return servers(**QUICK)


# -- raw clients ---------------------------------------------------------------------------
def handshake(srv: Srv, **headers: str) -> tuple[str, dict[str, Any]]:
    r = requests.get(srv.url + OPEN_PATH, headers=headers, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    assert r.text.startswith("0"), r.text
    opened = json.loads(r.text[1:])
    return str(opened["sid"]), opened


def get(srv: Srv, sid: str) -> requests.Response:
    return requests.get(srv.poll_url(sid), timeout=TIMEOUT)


def post(srv: Srv, sid: str, body: str | bytes) -> requests.Response:
    return requests.post(srv.poll_url(sid), data=body, timeout=TIMEOUT)


def gone(srv: Srv, sid: str) -> bool:
    """The session no longer exists: a GET on it is answered 400 "Session ID unknown"."""
    r = get(srv, sid)
    return r.status_code == 400 and r.json()["code"] == 1


def poll_until_closed(srv: Srv, sid: str) -> list[str]:
    """GET until the session ends (its close packet, or 400); every packet seen."""
    seen: list[str] = []
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        r = get(srv, sid)
        if r.status_code == 400:
            return seen
        seen += r.text.split(SEP)
        if seen[-1] == "1":
            return seen
    raise AssertionError(f"session still open, saw {seen}")


def ws_open(srv: Srv, sid: str | None = None, **headers: str) -> websocket.WebSocket:
    url = srv.ws_url + (f"&sid={sid}" if sid else "")
    return websocket.create_connection(
        url, timeout=TIMEOUT, header=headers, skip_utf8_validation=True
    )


def ws_session(srv: Srv, connect: bool = True) -> tuple[websocket.WebSocket, dict[str, Any]]:
    ws = ws_open(srv)
    opened = ws.recv()
    assert isinstance(opened, str) and opened.startswith("0"), opened
    if connect:
        ws.send("40")
        assert recv(ws).startswith("40{"), "no CONNECT answer"
    return ws, json.loads(opened[1:])


def recv(ws: websocket.WebSocket) -> str:
    """The next frame that is not a ping (pings are answered); "" once the server closed."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        try:
            frame = ws.recv()
        except CLOSED:
            return ""
        if frame != "2":
            return frame if isinstance(frame, str) else frame.decode("latin-1")
        ws.send("3")
    raise AssertionError("only pings came")


def ws_closed(ws: websocket.WebSocket) -> bool:
    """Whether the server ends this WebSocket (within TIMEOUT), reading what comes first."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if recv(ws) == "":
            return True
    return False


def echo_works(ws: websocket.WebSocket, ack_id: int = 9) -> bool:
    ws.send(f'42{ack_id}["echo","still here"]')
    while (frame := recv(ws)) and not frame.startswith(f"43{ack_id}"):
        pass
    return frame == f'43{ack_id}["still here"]'


# -- EIO: handshake --------------------------------------------------------------------------
def test_eio_handshake_polling_open_packet_fields(srv: Srv) -> None:
    """EIO Handshake: the open packet carries sid, upgrades, pingInterval, pingTimeout and
    maxPayload (ms, bytes) as configured; polling may upgrade to websocket."""
    r = requests.get(srv.url + OPEN_PATH, timeout=TIMEOUT)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    opened = json.loads(r.text[1:])
    assert set(opened) == {"sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"}
    assert isinstance(opened["sid"], str) and opened["sid"]
    assert opened["upgrades"] == ["websocket"]
    assert (opened["pingInterval"], opened["pingTimeout"]) == (5000, 5000)
    assert opened["maxPayload"] == srv.sio.engine.max_packet_bytes


def test_eio_handshake_websocket_open_packet_fields(srv: Srv) -> None:
    """EIO Handshake, WebSocket-only session: the open packet, no upgrades."""
    ws, opened = ws_session(srv, connect=False)
    ws.close()
    assert set(opened) == {"sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"}
    assert opened["upgrades"] == [] and opened["pingInterval"] == 5000


@pytest.mark.parametrize(
    "method, query, code",
    [
        ("GET", "transport=polling", 5),
        ("GET", "EIO=abc&transport=polling", 5),
        ("GET", "EIO=3&transport=polling", 5),
        ("GET", "EIO=4", 0),
        ("GET", "EIO=4&transport=abc", 0),
        ("POST", "EIO=4&transport=polling", 2),
        ("PUT", "EIO=4&transport=polling", 2),
        ("GET", "EIO=4&transport=polling&sid=nobody", 1),
        ("POST", "EIO=4&transport=polling&sid=nobody", 1),
    ],
)
def test_eio_polling_query_and_method_errors_are_400(
    srv: Srv, method: str, query: str, code: int
) -> None:
    """EIO Query parameters: a missing mandatory one is HTTP 400; Sending/Receiving data: an
    unknown sid is HTTP 400; Handshake: the handshake is a GET."""
    r = requests.request(method, f"{srv.url}/socket.io/?{query}", timeout=TIMEOUT)
    assert r.status_code == 400
    assert r.json() == {"code": code, "message": r.json()["message"], "statusCode": 400}


@pytest.mark.parametrize(
    "query", ["transport=websocket", "EIO=abc&transport=websocket", "EIO=4", "EIO=4&sid=x"]
)
def test_eio_websocket_without_mandatory_query_is_refused(srv: Srv, query: str) -> None:
    """EIO WebSocket: a missing mandatory query parameter ends the WebSocket (refused with the
    HTTP 400 a polling request gets)."""
    url = srv.url.replace("http://", "ws://") + "/socket.io/?" + query
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(url, timeout=TIMEOUT)
    assert refused.value.status_code == 400


def test_eio_websocket_with_unknown_sid_is_refused(srv: Srv) -> None:
    """EIO WebSocket / Upgrade: a sid the server does not know (HTTP 400, code 1)."""
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        ws_open(srv, sid="nobody")
    assert refused.value.status_code == 400
    assert json.loads(refused.value.resp_body)["code"] == 1


# -- EIO: heartbeat --------------------------------------------------------------------------
def test_eio_heartbeat_polling(pinging: Srv) -> None:
    """EIO Heartbeat: the server pings every pingInterval; a client that pongs stays."""
    sid, _ = handshake(pinging)
    assert post(pinging, sid, "40").text == "ok"
    pings, seen = 0, []
    deadline = time.monotonic() + TIMEOUT
    while pings < 2 and time.monotonic() < deadline:
        r = get(pinging, sid)
        assert r.status_code == 200, seen
        for packet in r.text.split(SEP):
            seen.append(packet)
            if packet == "2":
                pings += 1
                assert post(pinging, sid, "3").text == "ok"
    assert pings == 2 and seen[0].startswith("40{"), seen
    assert post(pinging, sid, '421["echo",1]').text == "ok"
    while (packets := get(pinging, sid).text.split(SEP)) == ["2"]:
        assert post(pinging, sid, "3").text == "ok"
    assert "431[1]" in packets, packets


def test_eio_heartbeat_websocket(pinging: Srv) -> None:
    """EIO Heartbeat over a WebSocket: pings come, answered pongs keep the session."""
    ws, _ = ws_session(pinging)
    try:
        for _ in range(2):
            assert ws.recv() == "2"
            ws.send("3")
        assert echo_works(ws)
    finally:
        ws.close()


def test_eio_ping_timeout_closes_polling_session(quick: Srv) -> None:
    """EIO Heartbeat: no pong within pingTimeout: the session is closed (then HTTP 400)."""
    sid, _ = handshake(quick)
    assert post(quick, sid, "40").text == "ok"  # connected: no connect timeout applies
    seen = poll_until_closed(quick, sid)
    assert seen[0].startswith("40{") and "2" in seen, seen
    assert gone(quick, sid)


def test_eio_ping_timeout_closes_websocket(quick: Srv) -> None:
    """EIO Heartbeat: no pong within pingTimeout: the WebSocket is closed."""
    ws = ws_open(quick)
    try:
        assert ws.recv().startswith("0")
        ws.send("40")
        assert ws.recv().startswith("40")
        assert ws.recv() == "2"  # not answered
        assert ws_closed(ws)
    finally:
        ws.close()


def test_eio_late_pong_closes_the_session_at_ping_timeout(servers: Callable[..., Srv]) -> None:
    """EIO Heartbeat: the session ends when the pong is pingTimeout late, not at some later
    check (slack allowed here: 0.1 s for timers and thread switches)."""
    srv = servers(ping_interval=1.0, ping_timeout=0.1, connect_timeout=5.0)
    ws, _ = ws_session(srv)
    try:
        assert ws.recv() == "2"  # not answered
        pinged = time.monotonic()
        assert ws_closed(ws)
    finally:
        ws.close()
    closed_at = [t for t, _ in srv.disconnects if t >= pinged]
    assert closed_at and closed_at[0] - pinged <= 0.1 + 0.1, closed_at[0] - pinged


# -- EIO: concurrent requests ----------------------------------------------------------------
def test_eio_second_get_at_once_is_400_and_closes(srv: Srv) -> None:
    """EIO Receiving data: more than one active GET: HTTP 400 and the session closed."""
    sid, _ = handshake(srv)
    results: list[requests.Response] = []
    first = threading.Thread(target=lambda: results.append(get(srv, sid)))
    first.start()
    deadline = time.monotonic() + TIMEOUT
    while not srv.sio.engine.sessions[sid].poll_waiting:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    second = get(srv, sid)
    first.join(TIMEOUT)
    assert second.status_code == 400
    assert results and results[0].text == "1"  # the waiting one learns of the close
    assert gone(srv, sid)


def test_eio_second_post_at_once_is_400_and_closes(srv: Srv) -> None:
    """EIO Sending data: more than one active POST: HTTP 400 and the session closed; the
    second POST's packets are not acted on (their order could not be kept)."""
    srv.entered.clear()
    srv.release.clear()
    sid, _ = handshake(srv)
    assert post(srv, sid, "40").text == "ok"
    assert get(srv, sid).text.startswith("40{")
    results: list[requests.Response] = []
    first = threading.Thread(target=lambda: results.append(post(srv, sid, '42["hold"]')))
    first.start()
    try:
        assert srv.entered.wait(TIMEOUT)  # the first POST is being acted on
        second = post(srv, sid, '427["echo","second"]')
    finally:
        srv.release.set()
        first.join(TIMEOUT)
    assert second.status_code == 400
    assert results and results[0].status_code == 200
    assert "427" not in "".join(poll_until_closed(srv, sid))


# -- EIO: upgrade ----------------------------------------------------------------------------
def connected_polling(srv: Srv) -> str:
    sid, _ = handshake(srv)
    assert post(srv, sid, "40").text == "ok"
    assert get(srv, sid).text.startswith("40{")
    return sid


def waiting_get(srv: Srv, sid: str) -> tuple[threading.Thread, list[requests.Response]]:
    """A GET left waiting on the session (returns once the server holds it)."""
    results: list[requests.Response] = []
    t = threading.Thread(target=lambda: results.append(get(srv, sid)))
    t.start()
    deadline = time.monotonic() + TIMEOUT
    while not srv.sio.engine.sessions[sid].poll_waiting:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return t, results


def test_eio_upgrade_probe_noop_then_upgrade(srv: Srv) -> None:
    """EIO Upgrade: the probe is answered "3probe", a pending GET gets a noop, and after "5"
    the session speaks over the WebSocket (polling then gets HTTP 400)."""
    sid = connected_polling(srv)
    t, results = waiting_get(srv, sid)
    ws = ws_open(srv, sid)
    try:
        ws.send("2probe")
        assert ws.recv() == "3probe"
        t.join(TIMEOUT)
        assert results and results[0].text == "6"
        ws.send("5")
        assert echo_works(ws)
        assert get(srv, sid).status_code == 400
        assert post(srv, sid, "3").status_code == 400
    finally:
        ws.close()


def test_eio_get_racing_the_upgrade_gets_a_noop_and_no_packets(srv: Srv) -> None:
    """EIO Upgrade: a GET still waiting when the upgrade completes is ended with a noop, and
    what the server sends from then on goes over the WebSocket only."""
    sid = connected_polling(srv)
    ws = ws_open(srv, sid)
    try:
        ws.send("2probe")
        assert ws.recv() == "3probe"
        assert get(srv, sid).text == "6"  # the probe's noop
        t, results = waiting_get(srv, sid)  # a client that polls once more
        ws.send("5")
        t.join(TIMEOUT)
        assert results and results[0].text == "6"
        assert echo_works(ws)
    finally:
        ws.close()


def test_eio_second_websocket_on_an_upgraded_session_is_closed(srv: Srv) -> None:
    """EIO WebSocket: more than one WebSocket per session: the server closes the new one
    (accepted, then closed, as the reference server does); the first one carries on."""
    sid = connected_polling(srv)
    ws = ws_open(srv, sid)
    try:
        ws.send("2probe")
        assert ws.recv() == "3probe"
        ws.send("5")
        second = ws_open(srv, sid)  # accepted: no HTTP error
        try:
            assert ws_closed(second)
        finally:
            second.close()
        assert echo_works(ws)
    finally:
        ws.close()


def test_eio_second_websocket_during_an_upgrade_is_closed(srv: Srv) -> None:
    """EIO WebSocket: a second WebSocket while the first is upgrading is closed; the first
    completes the upgrade."""
    sid = connected_polling(srv)
    ws = ws_open(srv, sid)
    try:
        ws.send("2probe")
        assert ws.recv() == "3probe"
        second = ws_open(srv, sid)
        try:
            assert ws_closed(second)
        finally:
            second.close()
        ws.send("5")
        assert echo_works(ws)
    finally:
        ws.close()


# -- EIO: payloads and invalid packets -------------------------------------------------------
def test_eio_polling_payload_packets_in_order(srv: Srv) -> None:
    """EIO Packet encoding, long-polling: packets joined by \\x1e; POST answered "ok"; the
    answers come back in the order the packets were sent."""
    sid, _ = handshake(srv)
    body = SEP.join(["40", *(f'42{i}["echo",{i}]' for i in range(1, 6))])
    r = post(srv, sid, body)
    assert (r.status_code, r.text) == (200, "ok")
    packets = get(srv, sid).text.split(SEP)
    assert packets[0].startswith("40{")
    assert packets[1:] == [f"43{i}[{i}]" for i in range(1, 6)]


@pytest.mark.parametrize("packet", ["abc", "", "9", "b%%%not-base64", "40" + SEP + "x"])
def test_eio_invalid_packet_in_a_post_is_400_and_closes(srv: Srv, packet: str) -> None:
    """EIO Protocol (packet types; the reference test suite's "invalid packet format"): a
    packet of no known type or bad base64 in a POST: HTTP 400, session closed."""
    sid, _ = handshake(srv)
    assert post(srv, sid, packet).status_code == 400
    assert gone(srv, sid)


def test_eio_post_that_is_not_utf8_is_400_and_closes(srv: Srv) -> None:
    """EIO Packet encoding: UTF-8 text; anything else is refused and closes the session."""
    sid, _ = handshake(srv)
    assert post(srv, sid, b"4\xff\xfe").status_code == 400
    assert gone(srv, sid)


@pytest.mark.parametrize("frame", ["abc", "", "9"])
def test_eio_invalid_packet_on_a_websocket_closes_it(srv: Srv, frame: str) -> None:
    """EIO Protocol: a WebSocket frame of no known packet type closes the connection."""
    ws, _ = ws_session(srv)
    try:
        ws.send(frame)
        assert ws_closed(ws)
    finally:
        ws.close()


def test_eio_post_over_max_payload_is_413_and_closes(srv: Srv) -> None:
    """EIO Handshake maxPayload: a polling request over it is refused (413), session closed."""
    sid, opened = handshake(srv)
    assert post(srv, sid, "4" + "x" * opened["maxPayload"]).status_code == 413
    assert gone(srv, sid)


def test_eio_max_payload_counts_bytes_on_websocket_text_frames(
    servers: Callable[..., Srv],
) -> None:
    """EIO Handshake maxPayload is a number of bytes: a text frame of fewer characters but
    more UTF-8 bytes than it closes the WebSocket; one just under it is read."""
    srv = servers(max_packet_bytes=1000, **CALM)
    ws, opened = ws_session(srv)
    try:
        assert opened["maxPayload"] == 1000
        fits = '421["echo","' + "e" * 980 + '"]'
        ws.send(fits)
        assert recv(ws).startswith("431")
        ws.send('422["echo","' + "\u20ac" * 400 + '"]')  # 412 characters, 1212 bytes
        assert ws_closed(ws)
    finally:
        ws.close()


# -- EIO: close ------------------------------------------------------------------------------
def test_eio_close_packet_ends_a_polling_session(srv: Srv) -> None:
    """EIO Protocol, close: a client's close packet ends the session."""
    sid = connected_polling(srv)
    assert post(srv, sid, "1").text == "ok"
    assert gone(srv, sid)


def test_eio_close_packet_ends_a_websocket(srv: Srv) -> None:
    """EIO Protocol, close, over a WebSocket: the server closes the connection."""
    ws, _ = ws_session(srv)
    try:
        ws.send("1")
        assert ws_closed(ws)
    finally:
        ws.close()


# -- SIO: connect ----------------------------------------------------------------------------
@pytest.mark.parametrize("transport", ["polling", "websocket"])
def test_sio_connect_to_main_namespace(srv: Srv, transport: str) -> None:
    """SIO Connection to a namespace: CONNECT is answered with CONNECT and a sid; its payload
    (auth) reaches the server."""
    auth = {"token": f"t-{transport}"}
    if transport == "polling":
        sid, _ = handshake(srv)
        post(srv, sid, "40" + json.dumps(auth))
        answer = get(srv, sid).text
    else:
        ws, _ = ws_session(srv, connect=False)
        ws.send("40" + json.dumps(auth))
        answer = recv(ws)
        ws.close()
    assert answer.startswith("40")
    data = json.loads(answer[2:])
    assert set(data) == {"sid"} and isinstance(data["sid"], str) and data["sid"]
    assert auth in srv.auths


def test_sio_connect_to_another_namespace_gets_connect_error(srv: Srv) -> None:
    """SIO Connection to a namespace: CONNECT_ERROR where the connection is not allowed
    (here: every namespace but "/")."""
    ws, _ = ws_session(srv, connect=False)
    try:
        ws.send("40/admin,")
        assert recv(ws) == '44/admin,{"message":"Invalid namespace"}'
        ws.send("40")
        assert recv(ws).startswith("40{")
    finally:
        ws.close()


def test_sio_refused_connect_gets_connect_error(srv: Srv) -> None:
    """SIO Connection to a namespace: a refused CONNECT gets CONNECT_ERROR {message}."""
    ws, _ = ws_session(srv, connect=False)
    try:
        ws.send('40{"reject":true}')
        answer = recv(ws)
        assert answer.startswith("44") and json.loads(answer[2:])["message"]
    finally:
        ws.close()


def test_sio_second_connect_is_answered(srv: Srv) -> None:
    """SIO Connection to a namespace: every CONNECT gets CONNECT or CONNECT_ERROR; a second
    one to "/" gets CONNECT with the same sid."""
    ws, _ = ws_session(srv, connect=False)
    try:
        ws.send("40")
        first = recv(ws)
        ws.send("40")
        assert recv(ws) == first
        assert echo_works(ws)
    finally:
        ws.close()


@pytest.mark.parametrize("packet", ['42["echo",1]', "41", '431["x"]', "4abc"])
def test_sio_first_packet_not_connect_closes_websocket(srv: Srv, packet: str) -> None:
    """SIO Connection to a namespace: a first packet that is not CONNECT closes the
    connection at once."""
    ws, _ = ws_session(srv, connect=False)
    try:
        ws.send(packet)
        assert ws_closed(ws)
    finally:
        ws.close()


def test_sio_first_packet_not_connect_closes_polling_session(srv: Srv) -> None:
    """SIO Connection to a namespace, over long-polling: the session is closed at once."""
    sid, _ = handshake(srv)
    assert post(srv, sid, '421["echo",1]').text == "ok"
    assert "431[1]" not in poll_until_closed(srv, sid)
    assert gone(srv, sid)


@pytest.mark.parametrize("transport", ["polling", "websocket"])
def test_sio_no_connect_within_connect_timeout_closes(quick: Srv, transport: str) -> None:
    """SIO Connection to a namespace: a session that sends no CONNECT is closed after the
    connect timeout (here 0.3 s; pongs alone do not keep it)."""
    if transport == "polling":
        sid, _ = handshake(quick)
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            r = get(quick, sid)
            if r.status_code == 400 or r.text.endswith("1"):
                break
            if "2" in r.text.split(SEP):
                post(quick, sid, "3")
        assert gone(quick, sid)
    else:
        ws, _ = ws_session(quick, connect=False)
        try:
            assert ws_closed(ws)  # recv() answers the pings meanwhile
        finally:
            ws.close()


# -- SIO: malformed packets ------------------------------------------------------------------
MALFORMED = [
    "49",  # no such packet type
    "4",  # an empty Socket.IO packet
    '42{"a":1}',  # event data that is not an array
    "42[]",  # an empty array
    "42[1]",  # no event name
    "42",  # no data
    '42"echo"',
    "43[]",  # an ack without an id
    "431{}",  # an ack whose data is not an array
    "43" + "9" * 16 + "[]",  # an ack id no client can have sent (over 15 digits)
    "42" + "1" * 16 + '["echo",1]',  # the same for an event's ack id
    '44{"message":"x"}',  # CONNECT_ERROR is the server's to send
    '42/admin,["echo",1]',  # a namespace this socket is not connected to
    "42[" * 3,  # not JSON
]


@pytest.mark.parametrize("packet", MALFORMED)
def test_sio_malformed_packet_closes_websocket(srv: Srv, packet: str) -> None:
    """SIO Sending and receiving data / Acknowledgement / Packet encoding: a packet that is
    malformed (event data not a non-empty array, an ack id or payload that is not one...)
    closes the connection."""
    ws, _ = ws_session(srv)
    try:
        ws.send(packet)
        assert ws_closed(ws)
    finally:
        ws.close()


def test_sio_malformed_packet_closes_polling_session(srv: Srv) -> None:
    """The same over long-polling: the session ends (its pending GET gets the close)."""
    sid = connected_polling(srv)
    post(srv, sid, "42[]")
    assert gone(srv, sid) or poll_until_closed(srv, sid)[-1] == "1"
    assert gone(srv, sid)


def test_sio_binary_data_nothing_announced_closes(srv: Srv) -> None:
    """SIO Packet encoding: binary attachments follow the packet that counts them; binary
    data with none announced closes the connection."""
    ws, _ = ws_session(srv)
    try:
        ws.send_binary(b"\x01\x02")
        assert ws_closed(ws)
    finally:
        ws.close()


def test_sio_ack_for_nothing_asked_is_dropped(srv: Srv) -> None:
    """SIO Acknowledgement: an ACK (well formed) for an id the server never used is dropped;
    the connection carries on."""
    ws, _ = ws_session(srv)
    try:
        ws.send('43999[{"x":1}]')
        assert echo_works(ws)
    finally:
        ws.close()


# -- SIO: events, acks, disconnect ------------------------------------------------------------
@pytest.mark.parametrize("transport", ["polling", "websocket"])
def test_sio_event_with_ack_id_gets_an_ack_with_that_id(srv: Srv, transport: str) -> None:
    """SIO Acknowledgement: the receiver answers with an ACK of the same id, whose payload
    is an array; an event without an id gets no ACK."""
    if transport == "polling":
        sid = connected_polling(srv)
        post(srv, sid, SEP.join(['42["echo","no ack"]', '4212["echo",{"k":[1,"2"]}]']))
        assert get(srv, sid).text == '4312[{"k":[1,"2"]}]'
    else:
        ws, _ = ws_session(srv)
        try:
            ws.send('42["echo","no ack"]')
            ws.send('4212["echo",{"k":[1,"2"]}]')
            assert recv(ws) == '4312[{"k":[1,"2"]}]'
            ws.send('4213["nobody-handles-this"]')
            assert recv(ws) == "4313[]"
        finally:
            ws.close()


def test_sio_disconnect_then_connect_again(srv: Srv) -> None:
    """SIO Disconnection from a namespace: no answer; the Engine.IO session may stay and
    CONNECT again; until then other packets close it."""
    ws, _ = ws_session(srv)
    try:
        ws.send("41")
        ws.send("40")
        answer = recv(ws)
        assert answer.startswith("40{"), answer
        assert echo_works(ws)
        ws.send("41")
        ws.send('42["echo",1]')
        assert ws_closed(ws)
    finally:
        ws.close()


# -- limits of this server -------------------------------------------------------------------
def test_sessions_per_address_are_capped(servers: Callable[..., Srv]) -> None:
    """At most max_sessions_per_ip sessions at once per client address: one handshake more
    (polling or WebSocket) gets HTTP 429 {code: 4}; another address, or a freed slot, works."""
    srv = servers(max_sessions_per_ip=2, **CALM)
    ip = {"X-Forwarded-For": "203.0.113.7"}
    sid, _ = handshake(srv, **ip)
    ws = ws_open(srv, **ip)
    try:
        assert ws.recv().startswith("0")
        r = requests.get(srv.url + OPEN_PATH, headers=ip, timeout=TIMEOUT)
        assert r.status_code == 429 and r.json()["code"] == 4 and r.json()["message"]
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            ws_open(srv, **ip)
        assert refused.value.status_code == 429
        handshake(srv, **{"X-Forwarded-For": "203.0.113.8"})
        assert post(srv, sid, "1").text == "ok"  # one of the two ends
        handshake(srv, **ip)
    finally:
        ws.close()


def test_a_client_that_reads_nothing_is_closed(servers: Callable[..., Srv]) -> None:
    """At most max_queue packets wait for one client: one that answers pings but reads
    nothing is closed once its queue is full, and its WebSocket ends."""
    srv = servers(max_queue=20, **QUICK)
    ws, _ = ws_session(srv)
    try:
        sid = next(iter(srv.sio.conns))
        deadline = time.monotonic() + TIMEOUT
        rounds = 0
        while srv.sio.conns.get(sid) is not None and time.monotonic() < deadline:
            ws.send('42["flood",{"n":10,"size":20000}]')  # 200 kB, under the cap each time
            ws.send("3")  # a pong, without reading the ping
            rounds += 1
            time.sleep(0.01)
        assert sid not in srv.sio.conns, f"still open after {rounds} rounds"
        assert rounds > 2  # the queue filled because nothing was read, not in one go
        assert ws_closed(ws)
    finally:
        ws.close()


def test_a_burst_over_the_queue_limit_closes_a_polling_session(
    servers: Callable[..., Srv],
) -> None:
    """max_queue on long-polling: a session with more packets waiting than the limit is
    closed; its next GET gets the close packet."""
    srv = servers(max_queue=20, **CALM)
    sid = connected_polling(srv)
    assert post(srv, sid, '42["flood",{"n":50,"size":1}]').text == "ok"
    assert gone(srv, sid)


def test_settings_reach_the_socket_server(tmp_path: Path) -> None:
    """The limits are settings (CLICKVOTE_CONNECT_TIMEOUT, CLICKVOTE_MAX_SESSIONS_PER_IP,
    CLICKVOTE_MAX_SOCKET_QUEUE) that the application hands to its Socket.IO server."""
    env = {
        "CLICKVOTE_CONNECT_TIMEOUT": "7.5",
        "CLICKVOTE_MAX_SESSIONS_PER_IP": "3",
        "CLICKVOTE_MAX_SOCKET_QUEUE": "40",
        "CLICKVOTE_DATA_DIR": str(tmp_path),
    }
    sio = create_app(Settings.from_env(env)).sio
    assert sio.connect_timeout == 7.5
    assert (sio.engine.max_sessions_per_ip, sio.engine.max_queue) == (3, 40)
