"""uvicorn's WebSocket protocol (wsproto) with a direct path for the Engine.IO layer.

An ASGI WebSocket costs a message dict, an awaited `send` or `receive` and, for each frame
sent, a wsproto serialisation and a socket write of its own. This protocol (uvicorn's `ws`
class in clickvote.app.SERVER_OPTIONS) offers the app, in the ASGI scope extension
`clickvote.ws`, two calls that skip that per-frame work once the WebSocket is accepted:

- `send_texts(texts)`: every text as one unmasked FIN frame (RFC 6455 5.2; a server's frames
  are never masked), all in ONE transport write; nothing once the close handshake has begun.
- `receive_batch()`: every message received so far (at least one), as the ASGI dicts
  `receive` gives one at a time, so the events of one socket read are handled together.

A text message in one frame (what every Engine.IO client sends) is queued as it is, without
uvicorn's reassembly buffer, and reading pauses only once MAX_BACKLOG messages wait to be
taken, not after each message (two epoll changes per message saved); fragmented, binary and
oversized messages take uvicorn's own path (the last: close code 1009).

Everything else (the handshake, reading and checking frames, ping/pong, the close handshake
and its codes, the 1009 size limit) stays uvicorn's and wsproto's. The Engine.IO reference
server does not compress (perMessageDeflate is off by default in engine.io 4); frames sent
here are never compressed, which RFC 7692 allows where the extension was negotiated.
"""

from __future__ import annotations

import struct
from typing import Any

from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.wsproto_impl import WSProtocol
from wsproto.connection import ConnectionState
from wsproto.events import BytesMessage, TextMessage

from clickvote.engineio import EXTENSION

_FIN_TEXT = 0x81  # FIN + opcode 1 (text)
MAX_BACKLOG = 64  # messages received and not yet taken by the app before reading pauses


def text_frame(text: str) -> bytes:
    """One unmasked final text frame carrying `text` (RFC 6455 5.2)."""
    payload = text.encode()
    n = len(payload)
    if n < 126:
        return bytes((_FIN_TEXT, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", _FIN_TEXT, 126, n) + payload
    return struct.pack("!BBQ", _FIN_TEXT, 127, n) + payload


class LeanWSProtocol(WSProtocol):
    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        self.scope["extensions"][EXTENSION] = {  # type: ignore[index]
            "send_texts": self.send_texts,
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

    async def send_texts(self, texts: list[str]) -> None:
        if not self.writable.is_set():  # the client reads slower than we write: wait
            await self.writable.wait()
        if self.disconnected:
            raise ClientDisconnected()
        if self.close_sent or self.conn.state is not ConnectionState.OPEN:
            return  # closing: the app's reader ends the session
        if not self.transport.is_closing():
            self.transport.write(b"".join(map(text_frame, texts)))

    async def receive_batch(self) -> list[Any]:
        queue = self.queue
        out = [await queue.get()]
        while not queue.empty():
            out.append(queue.get_nowait())
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        return out
