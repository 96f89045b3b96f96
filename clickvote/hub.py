"""The hub of `clickvote serve --workers N`: what the worker processes of one machine share.

The supervising process (clickvote/workers.py) runs it on a Unix socket in a private (0700)
directory; each worker keeps one connection to it (clickvote/hublink.py). One line per
message, its first byte its kind:

- `F<message JSON>`: a fan-out message (clickvote/fanout.py) for every worker (INVALIDATE),
  relayed as it is to every OTHER worker (the sender delivers to itself, as with Redis).
- `M<n> <room><message JSON>`: a fan-out message for the sockets of one room, `<room>` its
  name as a JSON string (n bytes, never a newline): relayed as it is to every OTHER worker
  interested in that room, read no further than its prefix.
- `J<room>` / `L<room>` (the room as in `M`): the worker has local sockets in the room now
  (its first joined) / no more (its last left). A worker (re)connecting sends a `J` for each
  room it has sockets in; its interest ends with its connection.
- `T<id> [key, burst, rate, cost]`: take from a token bucket; answered `R<id> <wait>` (the
  buckets live here, so a limit holds across workers as it does in one process).
- `S<id> [ip, limit]`: may one more Engine.IO session open from `ip`? Answered `R<id> 1` (and
  counted) or `R<id> 0`. `E"ip"`: one of them ended. A worker's sessions are uncounted when its
  connection ends (the worker died).
- `U<id> [key, ttl]`: is `key` (a proof of work's challenge) used here for the first time?
  Answered `R<id> 1` (and kept for `ttl` seconds, at most USED_MAX keys) or `R<id> 0`.
- `W<id> [key, voter, window, limit]`: may `voter` vote from `key` (an IP + user-agent window
  of clickvote/abuse.py)? Answered `R<id> 1` (a voter already in the window, or one more
  within `limit`, then remembered for `window` seconds) or `R<id> 0`; the hub remembers at
  most abuse.WINDOW_MAX_ENTRIES voters, the least recently used keys forgotten first.
- `V<id> [key, voter, window, limit, bucket, burst, rate, cost]`: a vote's `W`, then, for a
  voter it admits, its `T`, in one question. Answered `R<id> -` (ratelimit.REFUSED: the
  window refused, no token taken) or `R<id> <wait>` (as `T`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter
from typing import Any

from clickvote.abuse import IpWindow
from clickvote.ratelimit import REFUSED, RateLimiter

log = logging.getLogger("clickvote.hub")
WRITE_BUFFER_MAX = 16 * 1024 * 1024  # bytes queued for one worker before its messages drop
LINE_MAX = 1024 * 1024  # bytes of one line
READ_SIZE = 256 * 1024
USED_MAX = 200_000  # challenges remembered as used (the oldest forgotten first)


class Hub:
    def __init__(self, path: str) -> None:
        self.path = path
        self.peers: dict[asyncio.StreamWriter, Counter[str]] = {}
        self.interest: dict[bytes, set[asyncio.StreamWriter]] = {}  # room -> workers in it
        self.rooms: dict[asyncio.StreamWriter, set[bytes]] = {}  # worker -> its rooms
        self.limiters: dict[tuple[float, float], RateLimiter] = {}
        self.sessions: Counter[str] = Counter()  # client address -> sessions open, all workers
        self.used: dict[str, float] = {}  # challenge -> when it expires, oldest first
        self.window = IpWindow()  # the IP + user-agent windows of every worker
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_unix_server(self._serve, self.path)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self.peers):
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.peers[writer] = Counter()
        self.rooms[writer] = set()
        rest = b""
        try:
            while chunk := await reader.read(READ_SIZE):
                *lines, rest = (rest + chunk).split(b"\n")
                if len(rest) > LINE_MAX:
                    raise ValueError("a line over LINE_MAX bytes")
                self.handle(writer, lines)
        except (ConnectionError, ValueError) as exc:
            log.warning("hub: a worker's connection failed (%s)", exc)
        finally:
            self.sessions.subtract(self.peers.pop(writer))
            self.sessions += Counter()  # drops the addresses at zero
            for room in self.rooms.pop(writer):
                self._leave(writer, room)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def handle(self, writer: asyncio.StreamWriter, lines: list[bytes]) -> None:
        """The lines of one read: the fan-out relayed, the questions answered, each in one
        write per worker."""
        relay: dict[asyncio.StreamWriter, list[bytes]] = {}
        answers: list[bytes] = []
        for line in lines:
            kind = line[:1]
            if kind == b"M":
                size, _, routed = line[1:].partition(b" ")
                for peer in self.interest.get(routed[: int(size)], ()):
                    if peer is not writer:
                        relay.setdefault(peer, []).append(line)
            elif kind == b"F":
                for peer in self.peers:
                    if peer is not writer:
                        relay.setdefault(peer, []).append(line)
            elif kind == b"J":
                self.rooms[writer].add(line[1:])
                self.interest.setdefault(line[1:], set()).add(writer)
            elif kind == b"L":
                self.rooms[writer].discard(line[1:])
                self._leave(writer, line[1:])
            elif kind == b"E":
                self._release(writer, str(json.loads(line[1:])))
            elif kind in (b"T", b"S", b"U", b"W", b"V"):
                rid, _, body = line[1:].partition(b" ")
                args = json.loads(body)
                if kind == b"T":
                    answer = self._take(*args)
                elif kind == b"S":
                    answer = self._admit(writer, *args)
                elif kind == b"W":
                    answer = self._admit_voter(*args)
                elif kind == b"V":
                    answer = self._admit_and_take(*args)
                else:
                    answer = self._first_use(*args)
                answers.append(b"R" + rid + b" " + answer.encode())
        if answers:
            writer.write(b"\n".join(answers) + b"\n")
        for peer, out in relay.items():
            if peer.transport.get_write_buffer_size() < WRITE_BUFFER_MAX:
                peer.write(b"\n".join(out) + b"\n")

    def _leave(self, writer: asyncio.StreamWriter, room: bytes) -> None:
        workers = self.interest.get(room)
        if workers is not None:
            workers.discard(writer)
            if not workers:
                del self.interest[room]

    def _take(self, key: str, burst: float, rate: float, cost: float) -> str:
        limiter = self.limiters.get((burst, rate))
        if limiter is None:
            limiter = self.limiters[(burst, rate)] = RateLimiter(burst, rate)
        return repr(limiter.take(key, cost))

    def _first_use(self, key: str, ttl: float) -> str:
        now = time.monotonic()
        while self.used:  # oldest first (ttl is the same for all): stop at a live one
            old, expires = next(iter(self.used.items()))
            if expires > now and len(self.used) < USED_MAX:
                break
            del self.used[old]
        if key in self.used:
            return "0"
        self.used[key] = now + ttl
        return "1"

    def _admit_voter(self, key: str, voter: str, window: float, limit: int) -> str:
        return "1" if self.window.admit((key,), voter, window, limit) else "0"

    def _admit_and_take(self, key: str, voter: str, window: float, limit: int, *bucket: Any) -> str:
        if self._admit_voter(key, voter, window, limit) == "0":
            return REFUSED
        return self._take(*bucket)

    def _admit(self, writer: asyncio.StreamWriter, ip: str, limit: int) -> str:
        if self.sessions[ip] >= limit:
            return "0"
        self.sessions[ip] += 1
        self.peers[writer][ip] += 1
        return "1"

    def _release(self, writer: asyncio.StreamWriter, ip: str) -> None:
        mine = self.peers.get(writer)
        if mine is None or mine[ip] <= 0:
            return
        mine[ip] -= 1
        self.sessions[ip] -= 1
        if mine[ip] == 0:
            del mine[ip]
        if self.sessions[ip] <= 0:
            del self.sessions[ip]
