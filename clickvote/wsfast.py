"""uvicorn's WebSocket protocol (wsproto) with a direct path for the Engine.IO layer.

An ASGI WebSocket costs a message dict, an awaited `send` or `receive` and, for each frame
sent, a wsproto serialisation and a socket write of its own. This protocol (uvicorn's `ws`
class in clickvote.app.SERVER_OPTIONS) offers the app, in the ASGI scope extension
`clickvote.ws`, two calls that skip that per-frame work once the WebSocket is accepted:

- `send_texts(items)`: every text as one unmasked FIN frame (RFC 6455 5.2; a server's frames
  are never masked; bytes are a frame built already, clickvote.wsframe), all in ONE transport
  write; nothing once the close handshake has begun.
- `write_now(frame)`: a frame built already, written at once, without a task or an await, if
  the connection is open and its transport takes writes (below its high-water mark); False,
  and nothing written, otherwise (the caller queues it for `send_texts`).
- `receive_batch()`: every message received so far (at least one), as the ASGI dicts
  `receive` gives one at a time, so the events of one socket read are handled together.

A text message in one frame (what every Engine.IO client sends) is queued as it is, without
uvicorn's reassembly buffer, and reading pauses only once MAX_BACKLOG messages wait to be
taken, not after each message (two epoll changes per message saved); fragmented, binary and
oversized messages take uvicorn's own path (the last: close code 1009).

Once the WebSocket is accepted without an extension (permessage-deflate not offered, or
turned off), the client's frames are read here too (`_read_frames`), not by wsproto: RFC 6455
5.2-5.5 as wsproto checks it, with its close codes: 1002 for a frame the protocol forbids
(unmasked, a reserved bit or opcode, a control frame fragmented or over 125 bytes, a
continuation out of place, a close frame of one byte or with a code no endpoint may send), 1007
for text or a close reason that is not UTF-8, 1009 for a message over `ws_max_size` (as
uvicorn: the app hears a disconnect with 1009). Pings are answered with their payload, pongs go
to uvicorn's keepalive, a client's close is answered with its code and ends the connection, and
after a close frame is sent only the client's close is looked at. The handshake, the server's
pings and the close the app sends stay uvicorn's and wsproto's. The Engine.IO reference
server does not compress (perMessageDeflate is off by default in engine.io 4); frames sent
here are never compressed, which RFC 7692 allows where the extension was negotiated.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.wsproto_impl import WSProtocol
from wsproto.connection import ConnectionState
from wsproto.events import BytesMessage, Pong, TextMessage
from wsproto.frame_protocol import LOCAL_ONLY_CLOSE_REASONS, CloseReason

from clickvote.engineio import EXTENSION
from clickvote.wsframe import text_frame

MAX_BACKLOG = 64  # messages received and not yet taken by the app before reading pauses
CONT, TEXT, BINARY, CLOSE, PING, PONG = 0, 1, 2, 8, 9, 10
KNOWN_CODES = frozenset(int(c) for c in CloseReason) - {int(c) for c in LOCAL_ONLY_CLOSE_REASONS}


def unmask(data: bytes | bytearray, mask: bytes | bytearray) -> bytes:
    """A client frame's payload, unmasked (RFC 6455 5.3)."""
    n = len(data)
    if not n:
        return b""
    key = (bytes(mask) * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


def control_frame(opcode: int, payload: bytes) -> bytes:
    return bytes((0x80 | opcode, len(payload))) + payload


def close_payload(code: int | None, reason: str = "") -> bytes:
    if code is None:
        return b""
    return code.to_bytes(2, "big") + reason.encode()[:123]


class ProtocolFailure(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


def as_frame(item: str | bytes) -> bytes:
    """A text's frame; bytes are one already."""
    return item if isinstance(item, bytes) else text_frame(item)


class LeanWSProtocol(WSProtocol):
    lean = False  # frames read by _read_frames (from the accept on), not by wsproto
    _kind = -1  # opcode of the message being received in fragments (-1: none)
    _offers_deflate = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._buf = bytearray()  # bytes of a frame not yet complete
        self._parts: list[bytes] = []  # payloads of the message being received

    def handle_connect(self, event: Any) -> None:
        self._offers_deflate = any("permessage-deflate" in e.lower() for e in event.extensions)
        super().handle_connect(event)
        self.scope["extensions"][EXTENSION] = {  # type: ignore[index]
            "send_texts": self.send_texts,
            "write_now": self.write_now,
            "receive_batch": self.receive_batch,
        }

    def handle_message(self, event: TextMessage | BytesMessage) -> None:
        if isinstance(event, TextMessage) and event.message_finished and self.buffer.value is None:
            data = event.data
            size = len(data) if data.isascii() else len(data.encode())
            if size <= self.config.ws_max_size:
                self.queue.put_nowait({"type": "websocket.receive", "text": data})
                if not self.read_paused and self.queue.qsize() >= MAX_BACKLOG:
                    self.read_paused = True
                    self.transport.pause_reading()
                return
        super().handle_message(event)

    def write_now(self, frame: bytes) -> bool:
        if (
            self.close_sent
            or self.disconnected
            or not self.writable.is_set()
            or self.transport.is_closing()
            or self.conn.state is not ConnectionState.OPEN
        ):
            return False
        self.transport.write(frame)
        return True

    async def send_texts(self, texts: list[str | bytes]) -> None:
        if not self.writable.is_set():  # the client reads slower than we write: wait
            await self.writable.wait()
        if self.disconnected:
            raise ClientDisconnected()
        if self.close_sent or self.conn.state is not ConnectionState.OPEN:
            return  # closing: the app's reader ends the session
        if not self.transport.is_closing():
            self.transport.write(b"".join(map(as_frame, texts)))

    async def send(self, message: Any) -> None:
        await super().send(message)
        accepted = message["type"] == "websocket.accept" and self.handshake_complete
        if accepted and not self.lean and not self.close_sent and not self._deflate():
            self.handle_events()  # what came with the handshake, parsed by wsproto
            self.lean = True

    def _deflate(self) -> bool:
        """Whether permessage-deflate was negotiated (offered by the client, and on here)."""
        return bool(self.config.ws_per_message_deflate and self._offers_deflate)

    def data_received(self, data: bytes) -> None:
        if not self.lean:
            super().data_received(data)
            return
        try:
            self._read_frames(data)
        except ProtocolFailure as exc:
            self._buf.clear()
            if not self.close_sent and not self.transport.is_closing():
                self.close_sent = True
                self.transport.write(control_frame(CLOSE, close_payload(exc.code, exc.reason)))
            self.transport.close()

    def _read_frames(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        pos, end = 0, len(buf)
        try:
            while end - pos >= 2:
                b0, b1 = buf[pos], buf[pos + 1]
                length, i = b1 & 0x7F, pos + 2
                if length == 126:
                    if end - i < 2:
                        break
                    length, i = int.from_bytes(buf[i : i + 2], "big"), i + 2
                elif length == 127:
                    if end - i < 8:
                        break
                    length, i = int.from_bytes(buf[i : i + 8], "big"), i + 8
                    if length >> 63:
                        raise ProtocolFailure(1002, "Payload length over 2^63")
                opcode, fin = b0 & 0x0F, b0 & 0x80
                self._check(b0, b1, opcode, fin, length)
                if end - i < 4 + length:
                    break
                payload = unmask(buf[i + 4 : i + 4 + length], buf[i : i + 4])
                pos = i + 4 + length
                self._frame(opcode, fin, payload)
        finally:
            del buf[:pos]

    def _check(self, b0: int, b1: int, opcode: int, fin: int, length: int) -> None:
        if b0 & 0x70:
            raise ProtocolFailure(1002, "Reserved bit set unexpectedly")
        if not b1 & 0x80:
            raise ProtocolFailure(1002, "Received an unmasked frame from a client")
        if opcode >= CLOSE:
            if opcode > PONG:
                raise ProtocolFailure(1002, f"Invalid opcode {opcode:#x}")
            if not fin:
                raise ProtocolFailure(1002, "Invalid attempt to fragment control frame")
            if length > 125:
                raise ProtocolFailure(1002, "Control frame with payload len > 125")
            return
        if opcode > BINARY:
            raise ProtocolFailure(1002, f"Invalid opcode {opcode:#x}")
        if opcode == CONT and self._kind < 0:
            raise ProtocolFailure(1002, "unexpected CONTINUATION")
        if opcode != CONT and self._kind >= 0:
            raise ProtocolFailure(1002, "expected CONTINUATION, got other frame")
        size = length + sum(map(len, self._parts))
        if size > self.config.ws_max_size:
            reason = f"Message exceeds the maximum size ({self.config.ws_max_size} bytes)"
            self.queue.put_nowait({"type": "websocket.disconnect", "code": 1009, "reason": reason})
            raise ProtocolFailure(1009, reason)

    def _frame(self, opcode: int, fin: int, payload: bytes) -> None:
        if opcode >= CLOSE:
            self._control(opcode, payload)
            return
        if self.close_sent:
            return  # after our close frame only the client's close counts
        if opcode != CONT:
            self._kind = opcode
        self._parts.append(payload)
        if not fin:
            return
        data = self._parts[0] if len(self._parts) == 1 else b"".join(self._parts)
        kind, self._parts, self._kind = self._kind, [], -1
        if kind == TEXT:
            try:
                text = data.decode()
            except UnicodeDecodeError as exc:
                raise ProtocolFailure(1007, "Invalid UTF-8 in text message") from exc
            self.queue.put_nowait({"type": "websocket.receive", "text": text})
        else:
            self.queue.put_nowait({"type": "websocket.receive", "bytes": data})
        if not self.read_paused and self.queue.qsize() >= MAX_BACKLOG:
            self.read_paused = True
            self.transport.pause_reading()

    def _control(self, opcode: int, payload: bytes) -> None:
        if opcode == PING:
            if not self.close_sent:
                self.transport.write(control_frame(PONG, payload))
            return
        if opcode == PONG:
            if not self.close_sent:
                self.handle_pong(Pong(payload=payload))
            return
        code: int | None = None
        reason = ""
        if len(payload) == 1:
            raise ProtocolFailure(1002, "CLOSE with 1 byte payload")
        if payload:
            code = int.from_bytes(payload[:2], "big")
            if not (code in KNOWN_CODES or 3000 <= code <= 4999):
                raise ProtocolFailure(1002, "CLOSE with invalid code")
            try:
                reason = payload[2:].decode()
            except UnicodeDecodeError as exc:
                raise ProtocolFailure(1007, "Error decoding CLOSE reason") from exc
        if self.close_sent:  # the client answers our close: the handshake is complete
            if self.close_timer is not None:
                self.close_timer.cancel()
                self.close_timer = None
            self.transport.close()
            return
        self.close_sent = True
        self.transport.write(control_frame(CLOSE, close_payload(code, reason)))
        got = 1005 if code is None else code
        self.queue.put_nowait({"type": "websocket.disconnect", "code": got, "reason": reason})
        self.transport.close()

    async def receive_batch(self) -> list[Any]:
        queue = self.queue
        out = [await queue.get()]
        while not queue.empty():
            out.append(queue.get_nowait())
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        return out
