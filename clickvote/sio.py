"""python-socketio's server, packet and client manager, tuned for fan-out to many sockets.

The packet and the manager are python-socketio's own extension points (`serializer=`,
`client_manager=`) and fall back to the stock code for anything they don't handle (binary
data, callbacks). The server subclass only tells handlers whether their caller asked for an
acknowledgement (`ack_wanted()`). They rely on python-socketio 5's internals, hence its
version range in pyproject.toml; the protocol tests (tests/app, and tests/web with the
published React client) hold them to it.
"""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from typing import Any

import socketio
from engineio import json as eio_json
from engineio import packet as eio_packet
from socketio import packet as sio_packet

from clickvote import jsonfast

log = logging.getLogger("clickvote.realtime")
_ACK_WANTED: ContextVar[bool] = ContextVar("clickvote_ack_wanted", default=False)


def ack_wanted() -> bool:
    """Inside an event handler: whether the client asked for an acknowledgement."""
    return _ACK_WANTED.get()


class Server(socketio.AsyncServer):
    """python-socketio's server; each event's handler runs in a task of its own, in which
    this records whether the event carried an ack id. The acknowledgement is queued on the
    socket right after the handler returns, with no await in between that could let another
    task send to that socket first (python-socketio 5's _handle_event_internal)."""

    async def _handle_event_internal(
        self, server: Any, sid: str, eio_sid: str, data: Any, namespace: str, id: Any
    ) -> None:
        _ACK_WANTED.set(id is not None)
        await super()._handle_event_internal(server, sid, eio_sid, data, namespace, id)


class _Json:
    """The JSON module of Socket.IO packets: encoding by clickvote.jsonfast, decoding by
    engine.io's loads (the standard library's, guarded against huge integers)."""

    @staticmethod
    def dumps(obj: Any, **kwargs: Any) -> str:
        if kwargs == {"separators": (",", ":")}:  # how socketio's packets call it
            return jsonfast.dumps(obj)
        return json.dumps(obj, **kwargs)

    loads = staticmethod(eio_json.loads)


class Packet(sio_packet.Packet):
    """python-socketio's packet (its documented extension point), with the data encoded once.

    The stock packet walks its data for bytes when it is made (a recursive reduce) and
    encodes it as JSON when it is sent. Bytes can't be written as JSON, so here the data is
    encoded when the packet is made: if that works, the packet is not binary and `encode`
    reuses the text. Anything else (bytes, unknown types) takes the stock path.
    """

    json = _Json
    _data_json: str | None = None
    _data_src: Any = None

    def __init__(
        self,
        packet_type: int = sio_packet.EVENT,
        data: Any = None,
        namespace: str | None = None,
        id: int | None = None,
        binary: bool | None = None,
        encoded_packet: Any = None,
    ) -> None:
        if binary is None and data is not None and encoded_packet is None:
            try:
                text = jsonfast.dumps(data)
            except (TypeError, ValueError):
                pass  # bytes inside, or not JSON at all: the stock check and encoder decide
            else:
                binary = False
                self._data_json, self._data_src = text, data
        super().__init__(packet_type, data, namespace, id, binary, encoded_packet)

    def encode(self) -> Any:
        text = self._data_json
        if (
            text is None
            or self.data is not self._data_src
            or self.packet_type in (sio_packet.BINARY_EVENT, sio_packet.BINARY_ACK)
        ):
            return super().encode()
        out = str(self.packet_type)  # the stock layout: type, namespace, ack id, data
        if self.namespace is not None and self.namespace != "/":
            out += self.namespace + ","
        if self.id is not None:
            out += str(self.id)
        return out + text

    @classmethod
    def data_is_binary(cls, data: Any) -> bool:
        stack = [data]
        while stack:
            item = stack.pop()
            if isinstance(item, bytes | bytearray):
                return True
            if isinstance(item, list):
                stack.extend(item)
            elif isinstance(item, dict):
                stack.extend(item.values())
        return False


class Manager(socketio.AsyncManager):
    """python-socketio's client manager, minus one asyncio task per recipient of an event.

    The stock `emit` wraps every recipient's send in a task and waits for all of them; a
    send only queues the packet on the recipient's Engine.IO socket, so here the recipients
    are served one after the other, in this task (same packets, same order). Sends with a
    callback (none in ClickVote) take the stock path.
    """

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str,
        room: Any = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: Any = None,
        **kwargs: Any,
    ) -> None:
        server = self.server
        send = getattr(server, "_send_eio_packet", None)
        if isinstance(skip_sid, set | frozenset | tuple):
            skip_sid = list(skip_sid)
        if callback is not None or send is None or set(kwargs) - {"ignore_queue"}:
            await super().emit(
                event,
                data,
                namespace,
                room=room,
                skip_sid=skip_sid,
                callback=callback,
                to=to,
                **kwargs,
            )
            return
        room = to or room
        if namespace not in self.rooms:
            return
        if isinstance(data, tuple):
            args = list(data)
        elif data is not None:
            args = [data]
        else:
            args = []
        skip = set(skip_sid) if isinstance(skip_sid, list) else {skip_sid}
        # the recipients are listed before the first send: a send can close a stale socket,
        # which changes the rooms
        targets = [eio for sid, eio in self.get_participants(namespace, room) if sid not in skip]
        if not targets:
            return
        encoded = server.packet_class(
            sio_packet.EVENT, namespace=namespace, data=[event, *args]
        ).encode()
        if not isinstance(encoded, list):
            encoded = [encoded]
        pkts = [eio_packet.Packet(eio_packet.MESSAGE, p) for p in encoded]
        for eio_sid in targets:
            try:
                for p in pkts:
                    await send(eio_sid, p)
            except Exception:  # one recipient's failure stops no other (as with the tasks)
                log.exception("sending %s to %s failed", event, eio_sid)
