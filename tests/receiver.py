"""A webhook receiver on 127.0.0.1 for tests: records every POST (headers and body) and
answers as its `mode` says: "ok" (204), "fail" (500) or "hang" (no answer for `hang` seconds).
It can be stopped (its port then refuses connections, its open ones are closed) and started
again on the same port. It counts the connections it accepted; with `keep_alive` it answers
in HTTP/1.1 and keeps each connection open for the next request, unless `close_after`: then it
closes it after each answer without saying so, unread, as the next request arrives (as a server
whose idle timeout runs out just then)."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.server
import json
import select
import socket
import ssl
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from clickvote.client import free_port


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature as the README tells a receiver to compute it."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    expected = sign(secret, headers["X-ClickVote-Timestamp"], body)
    return hmac.compare_digest(expected, headers["X-ClickVote-Signature"])


class Server(http.server.ThreadingHTTPServer):
    allow_reuse_address = True
    request_queue_size = 128  # socketserver's 5 drops the connects of a batch sent at once

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)
        # else: the sender gave up waiting (a "hang" answer), or stop() closed the connection


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


@dataclass
class Receiver:
    port: int = field(default_factory=free_port)
    mode: str = "ok"
    hang: float = 3.0
    received: list[Received] = field(default_factory=list)
    tls: ssl.SSLContext | None = None  # serve https (as localhost) with this context
    answering: int = 0  # requests received and not answered yet
    keep_alive: bool = False
    close_after: bool = False
    connections: int = 0  # accepted so far
    _server: http.server.ThreadingHTTPServer | None = None
    _open: set[socket.socket] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        if self.tls is not None:
            return f"https://localhost:{self.port}/hook?source=clickvote"
        return f"http://127.0.0.1:{self.port}/hook?source=clickvote"

    def start(self) -> Receiver:
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if owner.keep_alive else "HTTP/1.0"

            def setup(self) -> None:
                super().setup()
                with owner._lock:
                    owner.connections += 1
                    owner._open.add(self.connection)

            def finish(self) -> None:
                with owner._lock:
                    owner._open.discard(self.connection)
                super().finish()

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                owner.answering += 1
                owner.received.append(Received(dict(self.headers.items()), body))
                if owner.mode == "hang":
                    time.sleep(owner.hang)
                owner.answering -= 1
                status = 500 if owner.mode == "fail" else 204
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                if owner.close_after:  # at the worst moment: as the next request arrives
                    self.wfile.flush()
                    select.select([self.connection], [], [], 1.0)
                    self.close_connection = True

            def log_message(self, *args: Any) -> None:
                pass

        self._server = Server(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        if self.tls is not None:
            self._server.socket = self.tls.wrap_socket(self._server.socket, server_side=True)
        threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:
            for conn in self._open:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)

    def events(self, secret: str) -> list[dict[str, Any]]:
        """Every event received so far, each checked against its signature."""
        out = []
        for r in list(self.received):
            assert verify(secret, r.headers, r.body), r.headers
            out.append(r.event)
        return out

    def ids(self, kind: str = "vote") -> set[str]:
        return {r.event["id"] for r in list(self.received) if r.event["type"] == kind}
