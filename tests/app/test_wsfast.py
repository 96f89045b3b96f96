"""The WebSocket direct path (clickvote/wsfast.py) and the Engine.IO layer's use of it: frames
as RFC 6455 has them, every queued packet in one write, every received message in one batch."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import uvicorn
from uvicorn.server import ServerState
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Request, TextMessage
from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import FrameProtocol, Opcode

from clickvote.engineio import EXTENSION
from clickvote.sio import SocketServer
from clickvote.wsfast import LeanWSProtocol, text_frame


def test_text_frames_parse_as_rfc6455_says() -> None:
    texts = ["", "a", "x" * 125, "y" * 126, "é" * 40_000, "z" * 65_535, "w" * 65_536]
    reader = FrameProtocol(client=True, extensions=[])  # a client reads unmasked frames
    reader.receive_bytes(b"".join(map(text_frame, texts)))
    frames = list(reader.received_frames())
    assert [f.opcode for f in frames] == [Opcode.TEXT] * len(texts)
    assert all(f.frame_finished and f.message_finished for f in frames)
    assert [f.payload for f in frames] == texts


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closing = False
        self.paused = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


async def _open(
    app: Any, max_size: int = 16 * 1024 * 1024, options: dict[str, Any] | None = None
) -> Any:
    """A LeanWSProtocol on a fake transport, its handshake done; (protocol, transport, client).
    `options`: uvicorn's, over the test's own."""
    base = {"ws": LeanWSProtocol, "ws_max_size": max_size, "log_level": "warning"}
    config = uvicorn.Config(app, **{**base, **(options or {})})
    config.load()
    proto = LeanWSProtocol(config, ServerState(), {})
    transport = FakeTransport()
    proto.connection_made(transport)
    client = WSConnection(ConnectionType.CLIENT)
    proto.data_received(client.send(Request(host="h", target="/socket.io/?EIO=4")))
    for _ in range(100):
        if transport.writes:
            break
        await asyncio.sleep(0.01)
    client.receive_data(transport.writes.pop(0))
    assert isinstance(next(client.events()), AcceptConnection)
    return proto, transport, client


async def _until(cond: Any) -> None:
    for _ in range(200):
        if cond():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("not in time")


def test_protocol_sends_a_batch_in_one_write_and_receives_a_read_at_once() -> None:
    batches: list[list[dict[str, Any]]] = []
    replies = ["a", "é" * 100, "x" * 70_000]
    take = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        direct = scope["extensions"][EXTENSION]
        await take.wait()
        batches.append(await direct["receive_batch"]())
        await direct["send_texts"](replies)
        await take.wait()
        batches.append(await direct["receive_batch"]())

    async def scenario() -> None:
        proto, transport, client = await _open(app)
        # three messages in one read: one batch; reading goes on meanwhile
        proto.data_received(b"".join(client.send(TextMessage(t)) for t in ("1", "2", "é")))
        assert not transport.paused
        take.set()
        await _until(lambda: transport.writes)
        assert [[m.get("text") for m in b] for b in batches] == [["1", "2", "é"]]
        assert len(transport.writes) == 1  # all three replies in one write
        client.receive_data(transport.writes.pop())
        assert [e.data for e in client.events() if isinstance(e, TextMessage)] == replies
        # a backlog of MAX_BACKLOG untaken messages pauses reading until they are taken
        take.clear()
        proto.data_received(b"".join(client.send(TextMessage(str(i))) for i in range(64)))
        assert transport.paused
        take.set()
        await _until(lambda: len(batches) == 2)
        assert [m["text"] for m in batches[1]] == [str(i) for i in range(64)]
        assert not transport.paused
        proto.close_sent = True  # the close handshake begun: nothing more is sent
        await proto.send_texts(["late"])
        assert not transport.writes
        proto.connection_lost(None)

    asyncio.run(scenario())


def test_write_now_writes_only_while_the_transport_takes_writes() -> None:
    """`write_now` writes a ready frame at once while the connection is open and below its
    high-water mark; paused for writing, or closing, it writes nothing and says so."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await asyncio.sleep(1)

    async def scenario() -> None:
        proto, transport, client = await _open(app)
        write_now = proto.scope["extensions"][EXTENSION]["write_now"]
        assert write_now(text_frame("a")) is True
        proto.pause_writing()  # the transport's buffer over its high-water mark
        assert write_now(text_frame("b")) is False
        proto.resume_writing()
        assert write_now(text_frame("c")) is True
        proto.close_sent = True
        assert write_now(text_frame("d")) is False
        client.receive_data(b"".join(transport.writes))
        assert [e.data for e in client.events() if isinstance(e, TextMessage)] == ["a", "c"]
        proto.connection_lost(None)

    asyncio.run(scenario())


def test_protocol_closes_1009_on_a_message_over_the_limit() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await asyncio.sleep(1)

    async def scenario() -> None:
        proto, transport, client = await _open(app, max_size=100)
        proto.data_received(client.send(TextMessage("é" * 51)))  # 51 chars, 102 bytes
        assert transport.closing
        client.receive_data(transport.writes.pop())
        closes = [e for e in client.events() if isinstance(e, CloseConnection)]
        assert [c.code for c in closes] == [1009]
        assert proto.queue.get_nowait()["code"] == 1009
        proto.connection_lost(None)

    asyncio.run(scenario())


def test_engine_sends_what_one_batch_queued_together() -> None:
    """A batch of CONNECT and two events is answered through the direct path in one call:
    the CONNECT reply and both acks together, in the order they were queued."""
    sent: list[list[str]] = []
    asgi: list[dict[str, Any]] = []

    async def scenario() -> None:
        sio = SocketServer()

        async def echo(sid: str, args: list[Any], wants_ack: bool) -> Any:
            return args[0]

        sio.on("e", echo)
        incoming: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()
        incoming.put_nowait(
            [
                {"type": "websocket.receive", "text": "40"},
                {"type": "websocket.receive", "text": '421["e",1]'},
                {"type": "websocket.receive", "text": '422["e",2]'},
            ]
        )

        async def send_texts(texts: list[str]) -> None:
            sent.append(list(texts))
            if sum(map(len, sent)) == 4:
                incoming.put_nowait([{"type": "websocket.disconnect", "code": 1000}])

        async def receive() -> dict[str, Any]:
            return {"type": "websocket.connect"}

        async def send(msg: dict[str, Any]) -> None:
            asgi.append(msg)

        scope = {
            "type": "websocket",
            "query_string": b"EIO=4&transport=websocket",
            "headers": [],
            "client": ("127.0.0.1", 1),
            "extensions": {EXTENSION: {"send_texts": send_texts, "receive_batch": incoming.get}},
        }
        await asyncio.wait_for(sio(scope, receive, send), 5)

    asyncio.run(scenario())
    *_, (*_, connect, ack1, ack2) = sent  # the batch's three answers in one call
    assert sent[0][0].startswith("0{") and len(sent) <= 2  # the open packet first
    assert connect.startswith("40{") and (ack1, ack2) == ("431[1]", "432[2]")
    assert [m["type"] for m in asgi] == ["websocket.accept", "websocket.close"]


def masked(b0: int, payload: bytes, mask: bytes = b"\x01\x02\x03\x04") -> bytes:
    """A client frame by hand: first byte `b0` (FIN, RSV, opcode), masked payload."""
    n = len(payload)
    head = bytes((b0, 0x80 | n)) if n < 126 else bytes((b0, 0x80 | 126)) + n.to_bytes(2, "big")
    body = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
    return head + mask + body


def frames_out(transport: FakeTransport, client: WSConnection) -> list[Any]:
    client.receive_data(b"".join(transport.writes))
    transport.writes.clear()
    return list(client.events())


def idle_app() -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await asyncio.sleep(1)

    return app


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (bytes((0x81, 0x01)) + b"a", 1002),  # unmasked
        (masked(0xC1, b"a"), 1002),  # RSV1 without an extension
        (masked(0x83, b"a"), 1002),  # reserved data opcode
        (masked(0x8B, b""), 1002),  # reserved control opcode
        (masked(0x09, b""), 1002),  # fragmented ping
        (masked(0x89, b"p" * 126), 1002),  # control frame over 125 bytes
        (masked(0x80, b"a"), 1002),  # continuation with no message begun
        (masked(0x01, b"a") + masked(0x81, b"b"), 1002),  # new message inside a fragmented one
        (masked(0x81, b"\xff"), 1007),  # text not UTF-8
        (masked(0x88, b"\x03"), 1002),  # close with a one-byte payload
        (masked(0x88, (999).to_bytes(2, "big")), 1002),  # close code below 1000
        (masked(0x88, (1005).to_bytes(2, "big")), 1002),  # a local-only close code
        (masked(0x88, (2000).to_bytes(2, "big")), 1002),  # a reserved close code
        (masked(0x88, (1000).to_bytes(2, "big") + b"\xff"), 1007),  # reason not UTF-8
        (masked(0x81, b"x" * 101), 1009),  # over ws_max_size
        (masked(0x01, b"x" * 60) + masked(0x80, b"x" * 41), 1009),  # so in fragments
    ],
)
def test_a_frame_the_protocol_forbids_closes_with_its_code(frame: bytes, code: int) -> None:
    async def scenario() -> None:
        proto, transport, client = await _open(idle_app(), max_size=100)
        assert proto.lean
        proto.data_received(frame)
        assert transport.closing
        closes = [e for e in frames_out(transport, client) if isinstance(e, CloseConnection)]
        assert [c.code for c in closes] == [code]
        proto.connection_lost(None)

    asyncio.run(scenario())


def test_frames_split_anywhere_and_fragmented_messages_arrive_whole() -> None:
    async def scenario() -> None:
        proto, transport, client = await _open(idle_app())
        stream = (
            masked(0x81, "héllo".encode())
            + masked(0x01, b"ab")
            + masked(0x89, b"ping!")  # a ping between fragments: its pong at once
            + masked(0x00, b"c" * 200)
            + masked(0x80, "é".encode())
            + masked(0x82, b"\x00\x01")
        )
        for i in range(len(stream)):  # one byte per read
            proto.data_received(stream[i : i + 1])
        got = []
        while not proto.queue.empty():
            m = proto.queue.get_nowait()
            got.append(m.get("text", m.get("bytes")))
        assert got == ["héllo", "ab" + "c" * 200 + "é", b"\x00\x01"]
        events = frames_out(transport, client)
        assert [(type(e).__name__, bytes(e.payload)) for e in events] == [("Pong", b"ping!")]
        assert not transport.closing
        proto.connection_lost(None)

    asyncio.run(scenario())


def test_client_close_is_answered_with_its_code_and_the_app_told() -> None:
    async def scenario() -> None:
        proto, transport, client = await _open(idle_app())
        proto.data_received(masked(0x88, (4001).to_bytes(2, "big") + b"bye"))
        assert transport.closing and proto.close_sent
        closes = [e for e in frames_out(transport, client) if isinstance(e, CloseConnection)]
        assert [(c.code, c.reason) for c in closes] == [(4001, "bye")]
        assert proto.queue.get_nowait() == {
            "type": "websocket.disconnect",
            "code": 4001,
            "reason": "bye",
        }
        proto.connection_lost(None)

    asyncio.run(scenario())


def test_a_client_offering_deflate_is_read_by_wsproto() -> None:
    async def scenario() -> None:
        config = uvicorn.Config(idle_app(), ws=LeanWSProtocol, log_level="warning")
        config.load()
        proto = LeanWSProtocol(config, ServerState(), {})
        transport = FakeTransport()
        proto.connection_made(transport)
        client = WSConnection(ConnectionType.CLIENT)
        offer = Request(host="h", target="/socket.io/", extensions=[PerMessageDeflate()])
        proto.data_received(client.send(offer))
        await _until(lambda: transport.writes)
        assert not proto.lean  # uvicorn's default: deflate on, so wsproto reads the frames
        proto.connection_lost(None)

    asyncio.run(scenario())


def test_the_server_declines_deflate_so_browsers_take_the_direct_path(server: Any) -> None:
    """Browsers offer permessage-deflate; like engine.io's own server, ClickVote declines it."""
    import socket
    from urllib.parse import urlsplit

    url = urlsplit(server.url)
    client = WSConnection(ConnectionType.CLIENT)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        target = "/socket.io/?EIO=4&transport=websocket"
        offer = Request(host=url.netloc, target=target, extensions=[PerMessageDeflate()])
        sock.sendall(client.send(offer))
        accepted = None
        while accepted is None:
            client.receive_data(sock.recv(65536))
            accepted = next((e for e in client.events() if isinstance(e, AcceptConnection)), None)
    assert accepted.extensions == []


def test_a_served_websocket_sends_no_keepalive_ping_of_its_own() -> None:
    """Engine.IO's ping (every 25 s, answered by the client's pong) is a session's liveness
    check; uvicorn's own WebSocket keepalive (a ping frame every 20 s and a pong timer, per
    socket) is off in the server's options: no ping scheduled once the socket is accepted."""
    from clickvote.app import SERVER_OPTIONS

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await asyncio.sleep(1)

    async def scenario() -> None:
        proto, _, _ = await _open(app)  # uvicorn's defaults: a keepalive ping scheduled
        assert proto.ping_timer is not None
        proto.connection_lost(None)
        proto, _, _ = await _open(app, options=SERVER_OPTIONS)
        assert proto.ping_interval is None and proto.ping_timer is None
        proto.connection_lost(None)

    asyncio.run(scenario())
