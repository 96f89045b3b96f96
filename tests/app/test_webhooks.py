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
    return {"updatedAt": r.json()["updatedAt"]}


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
    assert r.json() == {"url": None, "secretSet": False, "pending": 0, "updatedAt": None}
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
