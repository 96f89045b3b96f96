"""uvicorn's WebSocket protocol (wsproto) with a direct path for the Engine.IO layer.

An ASGI WebSocket costs a message dict, an awaited `send` or `receive` and, for each frame
sent, a wsproto serialisation and a socket write of its own. This protocol (uvicorn's `ws`
class in clickvote.app.SERVER_OPTIONS) offers the app, in the ASGI scope extension
`clickvote.ws`, two calls that skip that per-frame work once the WebSocket is accepted:

- `send_texts(texts)`: every text as one unmasked FIN frame (RFC 6455 5.2; a server's frames
  are never masked), all in ONE transport write; nothing once the close handshake has begun.
- `receive_batch()`: every message received so far (at least one), as the ASGI dicts
  `receive` gives one at a time, so the events of one socket read are handled together.

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

from clickvote.engineio import EXTENSION

_FIN_TEXT = 0x81  # FIN + opcode 1 (text)


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
