"""A server's WebSocket text frame (RFC 6455 5.2): unmasked, so one frame's bytes fit every
connection a broadcast goes to."""

from __future__ import annotations

import struct

_FIN_TEXT = 0x81  # FIN + opcode 1 (text)


def text_frame(text: str) -> bytes:
    """One unmasked final text frame carrying `text`."""
    payload = text.encode()
    n = len(payload)
    if n < 126:
        return bytes((_FIN_TEXT, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", _FIN_TEXT, 126, n) + payload
    return struct.pack("!BBQ", _FIN_TEXT, 127, n) + payload
