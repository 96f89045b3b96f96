"""The webhooks' HTTP client, on asyncio streams: which URLs may be called (http and https
only, no credentials; by default nothing that resolves to a loopback, private, link-local or
otherwise non-public address), and one bounded POST (timeouts on connecting and on the
answer; a body of at most MAX_BODY bytes is read too, so that the connection can carry the
next POST).

Connections are kept open (HTTP/1.1 keep-alive) in a `Pool`, per destination: the URL's scheme,
host and port and the address connected to. Each POST resolves and checks the host first, so
a connection is reused only for the address just checked (a name that resolves differently a
moment later, DNS rebinding, gets a connection of its own, or a refusal). A connection waits at
most IDLE seconds for its next POST; one the receiver closed meanwhile is replaced by a new
one, and its POST sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

MAX_URL = 2000
MAX_HEAD = 16 * 1024  # bytes of status line and headers read from an answer
MAX_BODY = 64 * 1024  # bytes of an answer's body read to keep its connection (more: closed)
IDLE = 4.0  # seconds an open connection waits for the next POST to its destination
IDLE_PER_DESTINATION = 16  # open connections kept waiting per destination
IDLE_ALL = 256  # and in all

Destination = tuple[str, str, int, str]  # scheme, host name, port, address connected to


class BadDestination(ValueError):
    """A URL webhooks may not call; the message says why (it completes "url: ...")."""


@dataclass(frozen=True)
class Answer:
    status: int | None  # the HTTP status; None when none came
    error: str | None  # what went wrong, None for a 2xx

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def parse_url(url: str) -> SplitResult:
    """The URL split, or BadDestination: http/https with a host, no user or password, ASCII
    without spaces or control characters, at most MAX_URL characters."""
    if len(url) > MAX_URL:
        raise BadDestination(f"must be at most {MAX_URL} characters")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise BadDestination("must not contain spaces or control characters")
    if not url.isascii():
        raise BadDestination("must be ASCII (percent-encode other characters, punycode a host)")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise BadDestination(f"is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise BadDestination("must start with http:// or https://")
    if not parts.hostname:
        raise BadDestination("must name a host")
    if parts.username is not None or parts.password is not None:
        raise BadDestination("must not carry a user name or password")
    return parts


def public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def resolve(parts: SplitResult, allow_private: bool, timeout: float) -> list[str]:
    """The addresses to connect to; BadDestination when the host does not resolve or (unless
    `allow_private`) resolves to any non-public address."""
    host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = [str(ipaddress.ip_address(host))]  # an address: no lookup (no thread)
    except ValueError:
        addresses = await lookup(host, port, timeout)
    if not addresses:
        raise BadDestination(f"host {host} does not resolve")
    refused = [a for a in addresses if not public_address(a)]
    if refused and not allow_private:
        raise BadDestination(
            f"host {host} resolves to a loopback, private or link-local address ({refused[0]})"
        )
    return addresses


async def lookup(host: str, port: int, timeout: float) -> list[str]:
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout
        )
    except (OSError, TimeoutError) as exc:
        raise BadDestination(f"host {host} does not resolve ({exc or 'timed out'})") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def request_bytes(parts: SplitResult, body: bytes, headers: dict[str, str]) -> bytes:
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host = parts.netloc.rsplit("@", 1)[-1]
    lines = [f"POST {target} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines += [f"Content-Length: {len(body)}", "", ""]
    return "\r\n".join(lines).encode("latin-1") + body


def status_of(head: bytes) -> int:
    first = head.split(b"\r\n", 1)[0].split()
    if len(first) < 2 or not first[0].startswith(b"HTTP/") or not first[1].isdigit():
        raise ValueError("not an HTTP answer")
    return int(first[1])


@dataclass
class Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    reused: bool = False

    def close(self) -> None:
        self.writer.close()


class Pool:
    """Open connections waiting for their next POST, by destination (one event loop's)."""

    def __init__(self) -> None:
        self._idle: dict[Destination, list[tuple[Connection, asyncio.TimerHandle]]] = {}
        self._count = 0

    def take(self, where: Destination) -> Connection | None:
        """A connection to `where` still open, None when there is none."""
        while waiting := self._idle.get(where):
            conn, timer = waiting.pop()
            self._count -= 1
            timer.cancel()
            if not waiting:
                del self._idle[where]
            if not (conn.writer.is_closing() or conn.reader.at_eof()):
                conn.reused = True
                return conn
            conn.close()
        return None

    def give(self, where: Destination, conn: Connection) -> None:
        waiting = self._idle.setdefault(where, [])
        if len(waiting) >= IDLE_PER_DESTINATION or self._count >= IDLE_ALL:
            conn.close()
            return
        timer = asyncio.get_running_loop().call_later(IDLE, self._expire, where, conn)
        waiting.append((conn, timer))
        self._count += 1

    def _expire(self, where: Destination, conn: Connection) -> None:
        waiting = self._idle.get(where, [])
        for i, (held, _) in enumerate(waiting):
            if held is conn:
                del waiting[i]
                self._count -= 1
                break
        if not waiting:
            self._idle.pop(where, None)
        conn.close()

    def close(self) -> None:
        for waiting in self._idle.values():
            for conn, timer in waiting:
                timer.cancel()
                conn.close()
        self._idle.clear()
        self._count = 0


class Stale(Exception):
    """A reused connection the receiver had closed: the POST goes again on a new one."""


async def post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeout: float,
    allow_private: bool,
    pool: Pool | None = None,
) -> Answer:
    """POST `body` to `url`; the answer's status, or what went wrong. Never raises. With a
    pool, an open connection to the same destination is used, and kept open for the next."""
    try:
        parts = parse_url(url)
        addresses = await resolve(parts, allow_private, timeout)
    except BadDestination as exc:
        return Answer(None, f"refused: url {exc}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    where = (parts.scheme, parts.hostname or "", port, addresses[0])
    request = request_bytes(parts, body, headers)
    conn = pool.take(where) if pool is not None else None
    if conn is not None:
        try:
            return await _exchange(conn, request, timeout, pool, where)
        except Stale:
            pass
    try:
        conn = await _connect(parts, where, timeout)
    except TimeoutError:
        return Answer(None, f"connect timed out after {timeout:g} s")
    except OSError as exc:
        return Answer(None, f"connect failed: {exc.strerror or exc}")
    return await _exchange(conn, request, timeout, pool, where)  # a new one: never Stale


async def _connect(parts: SplitResult, where: Destination, timeout: float) -> Connection:
    tls = None
    if parts.scheme == "https":
        import ssl  # only where an https webhook is called

        tls = ssl.create_default_context()
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(
            where[3],
            where[2],
            ssl=tls,
            server_hostname=parts.hostname if tls else None,
            limit=MAX_HEAD,
        ),
        timeout,
    )
    return Connection(reader, writer)


async def _exchange(
    conn: Connection, request: bytes, timeout: float, pool: Pool | None, where: Destination
) -> Answer:
    """Send the request on `conn` and read the answer; the connection goes back to the pool
    when the answer allows it, else it is closed. Stale: a reused connection closed before
    any answer came."""
    keep = False
    try:
        conn.writer.write(request)
        head = await asyncio.wait_for(_head(conn), timeout)
        status = status_of(head)
        keep = await _read_body(conn, head, status, timeout)
    except TimeoutError:
        return Answer(None, f"no answer within {timeout:g} s")
    except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
        if conn.reused and _closed_before_answer(exc):
            raise Stale from exc
        return Answer(None, f"bad answer: {type(exc).__name__}: {exc}"[:300])
    finally:
        if keep and pool is not None:
            pool.give(where, conn)
        else:
            conn.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.writer.wait_closed(), 1.0)
    return Answer(status, None if 200 <= status < 300 else f"HTTP {status}")


def _closed_before_answer(exc: BaseException) -> bool:
    if isinstance(exc, asyncio.IncompleteReadError):
        return not exc.partial
    return isinstance(exc, ConnectionError)


async def _head(conn: Connection) -> bytes:
    await conn.writer.drain()
    while True:
        head = await conn.reader.readuntil(b"\r\n\r\n")
        status = status_of(head)
        if not 100 <= status < 200 or status == 101:
            return head  # an interim answer (100 Continue, 103) is skipped


def header_values(head: bytes) -> dict[str, str]:
    """The answer's headers by lower-case name (repeated ones joined with commas)."""
    out: dict[str, str] = {}
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, sep, value = line.partition(":")
        if sep:
            key = name.strip().lower()
            out[key] = f"{out[key]}, {value.strip()}" if key in out else value.strip()
    return out


async def _read_body(conn: Connection, head: bytes, status: int, timeout: float) -> bool:
    """Read the answer's body (at most MAX_BODY bytes); whether the connection can carry the
    next request. An answer already has its status: a body that fails only closes it."""
    fields = header_values(head)
    tokens = {t.strip().lower() for t in fields.get("connection", "").split(",")}
    if not head.startswith(b"HTTP/1.1 ") or "close" in tokens or status == 101:
        return False
    try:
        if "chunked" in fields.get("transfer-encoding", "").lower():
            return await asyncio.wait_for(_read_chunks(conn.reader), timeout)
        length = int(fields.get("content-length", "0" if status in (204, 304) else "-1"))
        if not 0 <= length <= MAX_BODY:
            return False
        await asyncio.wait_for(conn.reader.readexactly(length), timeout)
    except (OSError, ValueError, TimeoutError, EOFError, asyncio.LimitOverrunError):
        return False  # IncompleteReadError is an EOFError
    return True


async def _read_chunks(reader: asyncio.StreamReader) -> bool:
    total = size = 1
    while size:
        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0].strip(), 16)
        total += size
        if total > MAX_BODY:
            return False
        if size:
            await reader.readexactly(size + 2)
    while await reader.readuntil(b"\r\n") != b"\r\n":
        pass  # trailers
    return True
