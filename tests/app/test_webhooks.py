"""Webhooks: a signed POST per vote to a real receiver on 127.0.0.1, the write-only secret, test
events, the delivery log, and the URLs refused (bad ones, and private destinations unless the
operator allows them). Outages, restarts and two instances: tests/scale/test_webhooks.py."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from receiver import Receiver, sign, verify
from services import Client, free_port, load_settings, start_uvicorn

from clickvote.app import create_app

from .conftest import TIMEOUT, Dashboard, login

SECRET = "whsec-0123456789abcdef"


def wait_for(cond: Callable[[], Any], what: str, timeout: float = TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := cond()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)
    return value


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


def hook(dash: Dashboard, url: str, secret: str | None = SECRET) -> requests.Response:
    return dash.put("/settings/webhook", {"url": url, **({"secret": secret} if secret else {})})


def test_vote_reaches_the_receiver_signed(
    dash: Dashboard, clients: Any, receiver: Receiver
) -> None:
    group = dash.group("liked")
    r = hook(dash, receiver.url)
    assert r.status_code == 200, r.text
    assert r.json() == {"url": receiver.url, "secretSet": True, "pending": 0, **_at(r)}
    assert r.json()["maxPending"] == 100_000  # the installation's bound
    assert SECRET not in r.text and SECRET not in dash.get("/settings/webhook").text
    c = clients()
    token = login(c, dash.keys()["publicKey"])
    ack = c.call(
        "vote", {"id": "liked", "voteTo": "post-1", "userId": "ann", "value": 1, "token": token}
    )
    assert ack["voted"], ack
    got = wait_for(lambda: receiver.received, "the event")[0]
    assert verify(SECRET, got.headers, got.body)
    assert got.headers["X-ClickVote-Signature"] == sign(
        SECRET, got.headers["X-ClickVote-Timestamp"], got.body
    )
    assert abs(time.time() - int(got.headers["X-ClickVote-Timestamp"])) < 60
    assert not verify("another-secret-entirely", got.headers, got.body)
    event = got.event
    assert got.headers["X-ClickVote-Delivery"] == event["id"]
    assert event["type"] == "vote" and event["item"] == "post-1"
    assert event["group"] == {"id": group["id"], "name": "liked", "type": "single"}
    assert event["environment"]["name"] == dash.get("/users/self").json()["currentEnv"]["name"]
    assert event["totals"]["count"] == 1 and event["vote"] == {"value": 1, "previous": 0}
    assert event["time"].endswith("+00:00") and "ann" not in got.body.decode()
    log = wait_for(lambda: dash.get("/settings/webhook/deliveries").json()["deliveries"], "log")
    assert log[0]["eventId"] == event["id"] and log[0]["delivered"] and log[0]["status"] == 204


def test_votes_never_wait_for_the_receiver(dash: Dashboard, clients: Any) -> None:
    """Acknowledgements come while the receiver holds every delivery unanswered."""
    receiver = Receiver(mode="hang", hang=3.0).start()
    try:
        dash.group("busy")
        assert hook(dash, receiver.url).status_code == 200
        c = clients()
        token = login(c, dash.keys()["publicKey"])
        msg = {"id": "busy", "voteTo": "a", "value": 1, "token": token}
        assert c.call("vote", {**msg, "userId": "u0"})["voted"]
        wait_for(lambda: receiver.answering, "a delivery the receiver holds")
        acks = [c.call("vote", {**msg, "userId": f"u{i}"}) for i in range(1, 6)]
        assert receiver.answering > 0  # still held: the votes did not wait for it
        assert [a["total"]["count"] for a in acks] == [2, 3, 4, 5, 6]
    finally:
        dash.delete("/settings/webhook")
        receiver.stop()


def test_backoff_doubles_to_its_cap_with_jitter() -> None:
    from clickvote.webhooks import backoff

    for attempt, low, high in [(1, 2.5, 5), (2, 5, 10), (5, 40, 80), (12, 1800, 3600)]:
        delays = [backoff(attempt, 5.0, 3600.0) for _ in range(50)]
        assert all(low <= d <= high for d in delays), (attempt, min(delays), max(delays))
        assert len(set(delays)) > 1  # jittered: instances don't retry in step
    assert backoff(10_000, 5.0, 3600.0) <= 3600


def _at(r: requests.Response) -> dict[str, Any]:
    got = r.json()
    return {k: got[k] for k in ("updatedAt", "maxPending", "batchSize")}


def test_test_event_secret_kept_and_clearing(dash: Dashboard, receiver: Receiver) -> None:
    r = dash.post("/settings/webhook/test")
    assert r.status_code == 404 and r.json()["message"] == "webhook not found"
    assert hook(dash, receiver.url).status_code == 200
    other = Receiver().start()
    try:  # a new URL alone keeps the secret
        assert hook(dash, other.url, secret=None).json()["secretSet"]
        sent = dash.post("/settings/webhook/test").json()["id"]
        got = wait_for(lambda: other.received, "the test event")[0]
        assert got.event["id"] == sent and got.event["type"] == "test"
        assert verify(SECRET, got.headers, got.body) and not receiver.received
    finally:
        other.stop()
    r = dash.delete("/settings/webhook")
    assert r.json() == {
        "url": None,
        "secretSet": False,
        "pending": 0,
        "maxPending": 100_000,
        "batchSize": 1,
        "updatedAt": None,
    }
    assert dash.post("/settings/webhook/test").status_code == 404


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"url": "ftp://example.com/x", "secret": SECRET}, "url", "http:// or https://"),
        ({"url": "javascript:alert(1)", "secret": SECRET}, "url", "http:// or https://"),
        ({"url": "http://", "secret": SECRET}, "url", "must name a host"),
        ({"url": "http://a:b@example.com/", "secret": SECRET}, "url", "user name or password"),
        ({"url": "http://example.com:99999/", "secret": SECRET}, "url", "not a valid URL"),
        ({"url": "http://exa mple.com/", "secret": SECRET}, "url", "spaces"),
        ({"url": "http://example.com/ä", "secret": SECRET}, "url", "must be ASCII"),
        ({"url": "", "secret": SECRET}, "url", "at least 1"),
        ({"secret": SECRET}, "url", "required"),
        ({"url": "http://127.0.0.1:9/"}, "secret", "required"),
        ({"url": "http://127.0.0.1:9/", "secret": "short"}, "secret", "at least 16"),
        ({"url": "http://127.0.0.1:9/", "secret": SECRET, "maxPending": 0}, "maxPending", "1"),
        ({"url": "http://127.0.0.1:9/", "secret": SECRET, "maxPending": "9"}, "maxPending", ""),
        ({"url": "http://127.0.0.1:9/", "secret": SECRET, "maxPending": 10**8}, "maxPending", ""),
    ],
)
def test_bad_webhooks_refused_by_field(
    dash: Dashboard, body: dict[str, Any], field: str, words: str
) -> None:
    r = dash.put("/settings/webhook", body)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field and words in r.json()["message"], r.json()
    assert r.json()["message"].startswith(f"{field}: ")
    assert dash.get("/settings/webhook").json()["secretSet"] is False


def test_bound_on_waiting_events_set_kept_and_reset(dash: Dashboard) -> None:
    r = dash.put("/settings/webhook", {"url": "http://127.0.0.1:9/", "secret": SECRET})
    assert r.json()["maxPending"] == 100_000
    r = dash.put("/settings/webhook", {"url": "http://127.0.0.1:9/", "maxPending": 250})
    assert r.status_code == 200 and r.json()["maxPending"] == 250, r.text
    r = dash.put("/settings/webhook", {"url": "http://127.0.0.1:9/x"})  # left out: kept
    assert r.json()["maxPending"] == 250
    assert dash.get("/settings/webhook").json()["maxPending"] == 250
    r = dash.put("/settings/webhook", {"url": "http://127.0.0.1:9/", "maxPending": None})
    assert r.json()["maxPending"] == 100_000  # null: the installation's again
    dash.delete("/settings/webhook")


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server as shipped: private destinations refused."""
    port = free_port()
    settings = load_settings(port, tmp_path_factory.mktemp("guarded"), webhook_allow_private=False)
    srv, thread = start_uvicorn(create_app(settings), port)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "https://[::1]/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://100.64.0.1/",  # shared address space (carrier-grade NAT)
        "http://[fd00::1]/",  # IPv6 unique local
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
    ],
)
def test_private_destinations_refused(guarded: str, url: str) -> None:
    dash = Dashboard(guarded)
    r = hook(dash, url)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "url" and "loopback, private or link-local" in r.json()["message"]


def test_delivery_rechecks_the_address(receiver: Receiver) -> None:
    """The address is checked again when sending: a name that resolved to a public address
    when the webhook was set and to a private one now is refused, and nothing is sent."""
    from clickvote.webhook_http import post

    answer = asyncio.run(post(receiver.url, b"{}", {}, 1.0, allow_private=False))
    assert answer.status is None and answer.error is not None
    assert answer.error.startswith("refused: url host 127.0.0.1 resolves to a loopback")
    assert not receiver.received
    allowed = asyncio.run(post(receiver.url, b"{}", {}, 1.0, allow_private=True))
    assert allowed.ok and len(receiver.received) == 1


def test_votes_without_a_webhook_queue_nothing(dash: Dashboard, clients: Any, server: Any) -> None:
    dash.group("quiet")
    c = clients()
    token = login(c, dash.keys()["publicKey"])
    c.call("vote", {"id": "quiet", "voteTo": "a", "userId": "bo", "value": 1, "token": token})
    assert dash.get("/settings/webhook").json()["pending"] == 0
    assert dash.get("/settings/webhook/deliveries").json() == {"deliveries": [], "pending": 0}


@pytest.mark.host  # the openssl command line makes the certificate
def test_https_checks_the_receivers_certificate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clickvote.webhook_http import post

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    make = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    where = ["-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost"]
    subprocess.run(
        [*make, *where, "-addext", "subjectAltName=DNS:localhost"], check=True, capture_output=True
    )
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    receiver = Receiver(tls=tls).start()
    try:
        untrusted = asyncio.run(post(receiver.url, b"{}", {}, 2.0, allow_private=True))
        assert not untrusted.ok and "CERTIFICATE_VERIFY_FAILED" in str(untrusted.error)
        assert not receiver.received
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # now a certificate we trust
        trusted = asyncio.run(post(receiver.url, b'{"a": 1}', {}, 2.0, allow_private=True))
        assert trusted.ok, trusted
        assert [r.body for r in receiver.received] == [b'{"a": 1}']
    finally:
        receiver.stop()


@pytest.fixture(scope="module")
def patient(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server that waits 5 s for a receiver's answer."""
    port = free_port()
    settings = load_settings(port, tmp_path_factory.mktemp("patient"), webhook_timeout=5.0)
    srv, thread = start_uvicorn(create_app(settings), port)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


def test_a_slow_receiver_holds_up_no_other(patient: str) -> None:
    slow, quick = Receiver(mode="hang", hang=8.0).start(), Receiver().start()
    voters: list[Any] = []
    try:
        for receiver, name in ((slow, "slow"), (quick, "quick")):
            dash = Dashboard(patient)
            dash.group(name)
            assert hook(dash, receiver.url).status_code == 200
            c = Client(patient)
            voters.append((dash, c, login(c, dash.keys()["publicKey"]), name))
        (slow_dash, c, token, name), quick_voter = voters
        for i in range(3):
            msg = {"id": name, "voteTo": f"i{i}", "userId": "u", "value": 1, "token": token}
            c.call("vote", msg)
        wait_for(lambda: len(slow.received) == 3, "the slow receiver holding three events")
        _, c, token, name = quick_voter
        c.call("vote", {"id": name, "voteTo": "a", "userId": "u", "value": 1, "token": token})
        wait_for(lambda: quick.received, "the quick receiver's event")
        assert slow.answering == 3  # all still held, none timed out yet
        assert slow_dash.get("/settings/webhook/deliveries").json()["deliveries"] == []
    finally:
        for _, c, _, _ in voters:
            c.close()
        slow.stop()
        quick.stop()


def posts(url: str, n: int, pool: Any) -> list[Any]:
    from clickvote.webhook_http import post

    async def go() -> list[Any]:
        return [await post(url, b'{"n": %d}' % i, {}, 2.0, True, pool) for i in range(n)]

    return asyncio.run(go())


def test_posts_share_a_connection_while_it_stays_open() -> None:
    from clickvote.webhook_http import Pool

    receiver = Receiver(keep_alive=True).start()
    try:
        pool = Pool()
        answers = posts(receiver.url, 8, pool)
        assert all(a.ok for a in answers), answers
        assert [r.body for r in receiver.received] == [b'{"n": %d}' % i for i in range(8)]
        assert receiver.connections == 1
        assert all(a.ok for a in posts(receiver.url, 3, None))  # no pool: one each
        assert receiver.connections == 4 and len(receiver.received) == 11
    finally:
        receiver.stop()


@pytest.mark.parametrize("keep_alive", [False, True])
def test_a_receiver_closing_after_each_answer_gets_everything(keep_alive: bool) -> None:
    """HTTP/1.0 (closed, as it says), or HTTP/1.1 closed without a word (the connection
    reused meets its end: the POST goes again on a new one)."""
    from clickvote.webhook_http import Pool

    receiver = Receiver(keep_alive=keep_alive, close_after=True).start()
    try:
        answers = posts(receiver.url, 6, Pool())
        assert all(a.ok for a in answers), answers
        assert [r.body for r in receiver.received] == [b'{"n": %d}' % i for i in range(6)]
        assert receiver.connections == 6
    finally:
        receiver.stop()


def test_a_connection_is_reused_only_for_the_address_just_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The host is resolved and checked before each POST; a connection serves only the same
    scheme, host, port and address: another name for the address gets its own, and a name now
    refused gets nothing, open connection or not."""
    from clickvote import webhook_http
    from clickvote.webhook_http import Pool, post

    async def lookup(host: str, port: int, timeout: float) -> list[str]:
        return ["127.0.0.1"]

    monkeypatch.setattr(webhook_http, "lookup", lookup)
    monkeypatch.setattr(webhook_http, "public_address", lambda a: True)  # 127.0.0.1 allowed
    receiver = Receiver(keep_alive=True).start()
    try:
        pool = Pool()
        named = receiver.url.replace("127.0.0.1", "hooks.example")
        other = receiver.url.replace("127.0.0.1", "other.example")

        async def go() -> list[Any]:
            out = [await post(u, b"{}", {}, 2.0, False, pool) for u in (named, named, other)]
            monkeypatch.setattr(webhook_http, "public_address", lambda a: False)  # rebound
            return [*out, await post(named, b"{}", {}, 2.0, False, pool)]

        *sent, refused = asyncio.run(go())
        assert all(a.ok for a in sent) and receiver.connections == 2
        assert refused.error.startswith("refused: url host hooks.example resolves to a loopback")
        assert len(receiver.received) == 3
        hosts = [r.headers["Host"] for r in receiver.received]
        assert hosts == [f"hooks.example:{receiver.port}"] * 2 + [f"other.example:{receiver.port}"]
    finally:
        receiver.stop()


def test_an_idle_connection_is_closed_after_its_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    from clickvote import webhook_http
    from clickvote.webhook_http import Pool, post

    monkeypatch.setattr(webhook_http, "IDLE", 0.1)
    receiver = Receiver(keep_alive=True).start()
    try:
        pool = Pool()

        async def go() -> None:
            assert (await post(receiver.url, b"{}", {}, 2.0, True, pool)).ok
            await asyncio.sleep(0.4)  # the pool closed it meanwhile
            assert (await post(receiver.url, b"{}", {}, 2.0, True, pool)).ok
            pool.close()

        asyncio.run(go())
        assert receiver.connections == 2 and len(receiver.received) == 2
    finally:
        receiver.stop()


def test_deliveries_share_a_connection(dash: Dashboard) -> None:
    receiver = Receiver(keep_alive=True).start()
    try:
        assert hook(dash, receiver.url).status_code == 200
        for n in range(1, 6):  # one at a time: each on the connection the last one left open
            dash.post("/settings/webhook/test")
            wait_for(lambda n=n: len(receiver.received) == n, "the test event")
        assert receiver.connections == 1
        dash.delete("/settings/webhook")
    finally:
        receiver.stop()


def test_a_webhook_with_a_batch_size_gets_the_waiting_events_together(tmp_path: Path) -> None:
    """Seven events waiting, batches of at most 5: two signed POSTs, `{"type": "batch",
    "events": [...]}`, each event in it as it is sent alone; every event once, all delivered."""
    from clickvote.identity import KINDS
    from clickvote.security import Box
    from clickvote.storage.base import NewEnv
    from clickvote.storage.sqlite import SQLiteStorage
    from clickvote.webhooks import Deliverer

    receiver = Receiver(keep_alive=True).start()
    storage = SQLiteStorage(f"sqlite:///{tmp_path / 'batch.db'}")
    box = Box(b"k" * 32)
    settings = load_settings(free_port(), tmp_path)

    async def go() -> list[str]:
        await storage.open()
        await storage.migrate()
        user = await storage.create_user("batch@example.com", "hash")
        org = await storage.create_org(user.id, "acme", [NewEnv("dev", 0, "pb_b", "s", KINDS)])
        env = (await storage.list_envs(org.id))[0].id
        await storage.set_webhook(env, receiver.url, box.seal_secret(SECRET), None, 5)
        ids = [str(await storage.queue_test_event(env)) for _ in range(7)]
        deliverer = Deliverer(storage, box, settings)
        deliverer.start()
        try:
            for _ in range(200):
                if (await storage.webhook_log(env, 0))[1] == 0:
                    break
                await asyncio.sleep(0.02)
        finally:
            await deliverer.close()
            log, pending = await storage.webhook_log(env, 20)
            await storage.close()
        assert pending == 0 and len(log) == 7 and all(a.delivered for a in log)
        return ids

    try:
        ids = asyncio.run(go())
        posts = receiver.events(SECRET)  # each POST's body checked against its signature
        assert [p["type"] for p in posts] == ["batch", "batch"]
        assert sorted(len(p["events"]) for p in posts) == [2, 5]  # sent at once, either first
        sent = [e["id"] for p in posts for e in p["events"]]
        assert sorted(sent) == sorted(ids)
        assert all(
            e["type"] == "test" and e["environment"]["name"] == "dev"
            for e in (e for p in posts for e in p["events"])
        )
        for got, batch in zip(receiver.received, posts, strict=True):
            assert got.headers["X-ClickVote-Event"] == "batch"
            assert got.headers["X-ClickVote-Events"] == str(len(batch["events"]))
            assert got.headers["X-ClickVote-Delivery"] == batch["events"][0]["id"]
    finally:
        receiver.stop()


def test_batch_size_set_kept_and_refused_past_its_range(dash: Dashboard) -> None:
    r = dash.put("/settings/webhook", {"url": "http://127.0.0.1:9/", "secret": SECRET})
    assert r.json()["batchSize"] == 1  # one event per POST unless asked
    r = dash.put("/settings/webhook", {"url": "http://127.0.0.1:9/", "batchSize": 16})
    assert r.status_code == 200 and r.json()["batchSize"] == 16, r.text
    assert dash.put("/settings/webhook", {"url": "http://127.0.0.1:9/"}).json()["batchSize"] == 16
    for bad in (0, 17, "4", None):
        r = dash.put("/settings/webhook", {"url": "http://127.0.0.1:9/", "batchSize": bad})
        assert r.status_code == 422 and r.json()["field"] == "batchSize", r.text
    dash.delete("/settings/webhook")


ANSWERS = [
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"3;x=1\r\nabc\r\n0\r\nX-Trailer: t\r\n\r\n",
    b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    b"HTTP/1.1 200 OK\r\n\r\n",  # no length: the body runs to the end, the connection with it
    b"HTTP/1.0 204 No Content\r\n\r\n",
]


def test_answers_framed_every_way_keep_or_close_their_connection() -> None:
    """A chunked body (with an interim 100 and trailers) or one of a stated length leaves the
    connection to the next POST; `Connection: close`, a body without a length and HTTP/1.0 end
    it. Every status is read as sent."""
    from clickvote.webhook_http import Pool, post

    accepted: list[int] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(len(accepted))
        while (head := await reader.readuntil(b"\r\n\r\n")) and ANSWERS:
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            reply = ANSWERS.pop(0)
            writer.write(reply)
            await writer.drain()
            framed = b"Content-Length" in reply or b"chunked" in reply
            if b"close" in reply or b"HTTP/1.0" in reply or not framed:
                break
        writer.close()

    async def go() -> list[Any]:
        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
        pool = Pool()
        try:
            return [await post(url, b"{}", {}, 2.0, True, pool) for _ in range(5)]
        finally:
            pool.close()
            server.close()

    answers = asyncio.run(go())
    assert [a.status for a in answers] == [200, 202, 500, 200, 204]
    assert len(accepted) == 3  # the first three on one, then one each for the last two
