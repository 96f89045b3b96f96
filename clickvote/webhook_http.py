"""The webhooks' HTTP client, on asyncio streams: which URLs may be called (http and https
only, no credentials; by default nothing that resolves to a loopback, private, link-local or
otherwise non-public address), and one bounded POST (timeouts on connecting and on the
answer, which is read no further than its status line and headers).

The address checked is the address connected to, so a name that resolves differently a
moment later (DNS rebinding) does not reach a refused address.
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
    lines = [f"POST {target} HTTP/1.1", f"Host: {host}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines += [f"Content-Length: {len(body)}", "", ""]
    return "\r\n".join(lines).encode("latin-1") + body


def status_of(head: bytes) -> int:
    first = head.split(b"\r\n", 1)[0].split()
    if len(first) < 2 or not first[0].startswith(b"HTTP/") or not first[1].isdigit():
        raise ValueError("not an HTTP answer")
    return int(first[1])


async def post(
    url: str, body: bytes, headers: dict[str, str], timeout: float, allow_private: bool
) -> Answer:
    """POST `body` to `url`; the answer's status, or what went wrong. Never raises."""
    try:
        parts = parse_url(url)
        addresses = await resolve(parts, allow_private, timeout)
        return await _exchange(parts, addresses[0], request_bytes(parts, body, headers), timeout)
    except BadDestination as exc:
        return Answer(None, f"refused: url {exc}")


async def _exchange(parts: SplitResult, address: str, request: bytes, timeout: float) -> Answer:
    port = parts.port or (443 if parts.scheme == "https" else 80)
    tls = None
    if parts.scheme == "https":
        import ssl  # only where an https webhook is called

        tls = ssl.create_default_context()
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(
                address,
                port,
                ssl=tls,
                server_hostname=parts.hostname if tls else None,
                limit=MAX_HEAD,
            ),
            timeout,
        )
    except TimeoutError:
        return Answer(None, f"connect timed out after {timeout:g} s")
    except OSError as exc:
        return Answer(None, f"connect failed: {exc.strerror or exc}")
    try:
        writer.write(request)
        head = await asyncio.wait_for(_head(reader, writer), timeout)
        status = status_of(head)
    except TimeoutError:
        return Answer(None, f"no answer within {timeout:g} s")
    except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
        return Answer(None, f"bad answer: {type(exc).__name__}: {exc}"[:300])
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), 1.0)
    return Answer(status, None if 200 <= status < 300 else f"HTTP {status}")


async def _head(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    await writer.drain()
    return await reader.readuntil(b"\r\n\r\n")
