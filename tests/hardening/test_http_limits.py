"""The JSON API's limits: login and registration throttling, the public read's rate limit,
429 answers (Retry-After header, precise wait in the body), request body size (413)."""

from __future__ import annotations

import contextlib
import json
import re
import socket
from collections.abc import Iterator
from typing import Any

import requests

from clickvote.ratelimit import RateLimiter

from .conftest import TIMEOUT, Dashboard, Server, setup


@contextlib.contextmanager
def limiter(server: Server, name: str, burst: float, per_second: float) -> Iterator[None]:
    saved = getattr(server.ctx, name)
    setattr(server.ctx, name, RateLimiter(burst, per_second))
    try:
        yield
    finally:
        setattr(server.ctx, name, saved)


def post(server: Server, path: str, body: Any, ip: str) -> requests.Response:
    headers = {"X-Forwarded-For": ip}
    return requests.post(server.url + path, json=body, headers=headers, timeout=TIMEOUT)


def check_429(r: requests.Response) -> float:
    """A 429 answer's precise wait (body), checked against its Retry-After header."""
    assert r.status_code == 429, (r.status_code, r.text)
    body = r.json()
    assert body["statusCode"] == 429 and "Too many requests" in body["message"], body
    wait = float(body["retryAfter"])
    header = int(r.headers["Retry-After"])
    assert wait >= 0.001 and header >= 1 and header >= wait and header - wait < 1, (header, wait)
    return wait


def test_wrong_passwords_throttled_per_ip_and_per_email(server: Server, dash: Dashboard) -> None:
    wrong = {"email": dash.email, "password": "not-the-password"}
    with limiter(server, "login_limiter", burst=5, per_second=0.01):
        same_ip = [post(server, "/auth/login", wrong, "203.0.113.50") for _ in range(40)]
        # another address guessing the same account is also stopped (per-email bucket)
        other_ip = post(server, "/auth/login", wrong, "198.51.100.50")
        # and a third address, on another account, is not
        fresh = post(server, "/auth/login", {**wrong, "email": "x@example.com"}, "192.0.2.50")
    codes = [r.status_code for r in same_ip]
    assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}, codes
    assert check_429(same_ip[-1]) > 10  # about 1/0.01 s
    check_429(other_ip)
    assert fresh.status_code == 401, fresh.text


def test_registrations_throttled_per_ip(server: Server) -> None:
    def register(n: int, ip: str) -> requests.Response:
        creds = {"email": f"reg{n}-{ip}@example.com", "password": "password123"}
        return post(server, "/auth/register", creds, ip)

    with limiter(server, "login_limiter", burst=3, per_second=0.01):
        codes = [register(n, "203.0.113.60").status_code for n in range(6)]
        elsewhere = register(0, "198.51.100.60")
    assert codes == [200] * 3 + [429] * 3, codes
    assert elsewhere.status_code == 200, elsewhere.text


def test_public_read_rate_limited_like_the_socket(server: Server, dash: Dashboard) -> None:
    pk = setup(dash, "public")
    params = {"key": pk, "id": "public", "voteTo": "x"}
    headers = {"X-Forwarded-For": "203.0.113.70"}

    def read() -> requests.Response:
        url = server.url + "/api/votes"
        return requests.get(url, params=params, headers=headers, timeout=TIMEOUT)

    with limiter(server, "ip_limiter", burst=3, per_second=0.01):
        answers = [read() for _ in range(5)]
    assert [r.status_code for r in answers] == [200] * 3 + [429] * 2
    check_429(answers[-1])
    assert answers[-1].headers["Access-Control-Allow-Origin"] == "*"


def test_voter_token_429_carries_retry_after(server: Server, dash: Dashboard) -> None:
    pk = setup(dash, "tokens")
    headers = {"X-Forwarded-For": "203.0.113.80"}
    url = server.url + "/api/voter-token"
    with limiter(server, "ip_limiter", burst=5, per_second=0.5):
        first = requests.get(url, params={"key": pk}, headers=headers, timeout=TIMEOUT)
        second = requests.get(url, params={"key": pk}, headers=headers, timeout=TIMEOUT)
    assert first.status_code == 200, first.text
    wait = check_429(second)  # 5 tokens at 0.5 per second, less the time between the two
    assert 5 < wait <= 10.0, wait


def raw_request(server: Server, head: str, body: list[bytes]) -> tuple[int, dict[str, Any]]:
    """Send a request's head and body chunks on a plain socket; the status and JSON answer."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=TIMEOUT) as s:
        s.sendall(head.encode())
        for chunk in body:
            try:
                s.sendall(chunk)
            except OSError:  # the server answered and closed early
                break
        data = b""
        while b"\r\n\r\n" not in data:
            data += s.recv(65536) or b"<closed>\r\n\r\n"
        head_part, _, rest = data.partition(b"\r\n\r\n")
        length = re.search(rb"(?i)content-length: *(\d+)", head_part)
        assert length is not None, data
        while len(rest) < int(length[1]):
            rest += s.recv(65536) or b"<closed>"
    return int(head_part.split(b" ", 2)[1]), json.loads(rest)


def test_body_over_the_limit_is_413(server: Server) -> None:
    limit = server.ctx.settings.max_body
    big = json.dumps({"email": "a@example.com", "password": "x" * (limit + 10)}).encode()
    r = requests.post(server.url + "/auth/login", data=big, timeout=TIMEOUT)
    assert r.status_code == 413 and r.json()["statusCode"] == 413, r.text
    # declared far over the limit: answered without reading the body
    head = "POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    status, body = raw_request(server, head + "Content-Length: 50000000\r\n\r\n", [b"{"])
    assert status == 413 and f"over {limit} bytes" in body["message"], body
    # no length given (chunked): refused once the chunks pass the limit
    chunk = b"x" * 16384
    chunks = [b"%x\r\n%s\r\n" % (len(chunk), chunk)] * (limit // len(chunk) + 2) + [b"0\r\n\r\n"]
    status, body = raw_request(server, head + "Transfer-Encoding: chunked\r\n\r\n", chunks)
    assert status == 413 and body["statusCode"] == 413, body
    # under the limit the same endpoint works as before
    small = requests.post(
        server.url + "/auth/login",
        json={"email": "a@example.com", "password": "x"},
        timeout=TIMEOUT,
    )
    assert small.status_code in (401, 422), small.text
