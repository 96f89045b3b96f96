"""Broadcasts (clickvote.sio.emit over clickvote.engineio.Shared), without the network: one
frame for every socket, written at once to an idle WebSocket and queued behind anything else;
an item's newer totals replace the older still waiting; a socket closed for a full queue in
the middle of a broadcast does not break it for the others."""

from __future__ import annotations

import asyncio
from typing import Any

from clickvote.engineio import MESSAGE, Peer, Session
from clickvote.sio import SocketServer
from clickvote.wsframe import text_frame

PEER = Peer("127.0.0.1", None, None)


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


class FakeSocket:
    """What clickvote.wsfast offers a WebSocket session: `write_now` (refused while `paused`)
    and `send_texts`, each recording what it wrote."""

    def __init__(self) -> None:
        self.now: list[bytes] = []
        self.batches: list[list[str | bytes]] = []
        self.paused = False

    def write_now(self, frame: bytes) -> bool:
        if self.paused:
            return False
        self.now.append(frame)
        return True

    async def send_texts(self, items: list[str | bytes]) -> None:
        self.batches.append(list(items))


async def _unused_send(msg: dict[str, Any]) -> None:
    raise AssertionError("the direct path is used")


async def _room(sio: SocketServer, transport: str, n: int) -> list[tuple[str, Session]]:
    """`n` sockets connected to "/" in the room "r": (socket sid, session) each."""
    out = []
    for _ in range(n):
        session = sio.engine._open(PEER, transport)
        await sio.on_message(session, "0")
        sid = sio._by_session[session.sid].sid
        sio.enter_room(sid, "r")
        out.append((sid, session))
    return out


def _texts(items: list[str | bytes]) -> list[str]:
    return [i if isinstance(i, str) else i[2:].decode() for i in items]  # frames under 126 B


def test_an_idle_websocket_gets_the_broadcast_frame_at_once_others_queue_it() -> None:
    async def scenario() -> None:
        sio = SocketServer()
        socks = [FakeSocket() for _ in range(3)]
        members = await _room(sio, "websocket", 3)
        for (_, session), sock in zip(members, socks, strict=True):
            session.start_writer(_unused_send, sock.send_texts, sock.write_now)
        await _settle()  # each writer sends the open packet and the CONNECT answer
        assert all(len(s.batches) == 1 and not s.now for s in socks)
        assert sio.emit("e", {"n": 1}, "r") == 3
        frame = text_frame(MESSAGE + '2["e",{"n":1}]')
        assert [s.now for s in socks] == [[frame]] * 3
        assert socks[0].now[0] is socks[1].now[0] is socks[2].now[0]  # built once
        assert all(not session.outbox and not session.wake.is_set() for _, session in members)
        sio.send(members[0][0], "own", 1)  # queued for its writer: the next broadcast waits
        socks[1].paused = True  # above its high-water mark: queued
        sio.emit("e", {"n": 2}, "r")
        assert [len(s.now) for s in socks] == [1, 1, 2]
        await _settle()
        assert _texts(socks[0].batches[-1]) == ['42["own",1]', '42["e",{"n":2}]']
        assert _texts(socks[1].batches[-1]) == ['42["e",{"n":2}]']
        for _, session in members:
            session.close()

    asyncio.run(scenario())


def test_newer_totals_replace_the_older_waiting_and_go_last() -> None:
    async def scenario() -> None:
        sio = SocketServer()
        [(sid, session)] = await _room(sio, "polling", 1)
        for i in range(1, 301):
            sio.emit("totals", i, "r", replace=True)
            sio.emit("other", i, "r")  # not replaceable: every one kept
            if i % 100 == 0:
                sio.send(sid, "own", i)
        texts = [p if isinstance(p, str) else p.text for p in session.outbox][2:]
        kept = []
        for i in range(1, 301):
            kept.append(f'42["other",{i}]')
            if i % 100 == 0:
                kept.append(f'42["own",{i}]')
        assert [t for t in texts if "totals" not in t] == kept  # in their order, every one
        assert [t for t in texts if "totals" in t] == ['42["totals",300]']
        # the newest totals after everything queued before it
        assert texts[-3:] == ['42["totals",300]', '42["other",300]', '42["own",300]']
        session.close()

    asyncio.run(scenario())


def test_a_socket_closed_for_its_full_queue_mid_broadcast_does_not_break_it() -> None:
    async def scenario() -> None:
        sio = SocketServer(max_queue=3)
        members = await _room(sio, "polling", 3)  # each has 2 packets waiting: open, CONNECT
        sio.send(members[1][0], "own", 1)  # the middle one's queue is full
        assert sio.emit("e", 1, "r") == 3
        assert members[1][1].closed and members[1][0] not in sio.rooms["r"]
        for _, session in (members[0], members[2]):
            assert not session.closed
            assert [p if isinstance(p, str) else p.text for p in session.outbox][-1] == (
                '42["e",1]'
            )
            session.close()

    asyncio.run(scenario())
