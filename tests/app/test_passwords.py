"""Passwords: scrypt (standard library) everywhere; bcrypt hashes of earlier versions still let
their users in where bcrypt is installed (and are rehashed), and get a clear answer where not."""

from __future__ import annotations

import sqlite3

import pytest
import requests

from clickvote import security
from clickvote.accounts import LEGACY_HASH_MESSAGE
from clickvote.cli import main
from clickvote.security import check_password, hash_password, needs_rehash, scrypt_log2n

from .conftest import TIMEOUT, Dashboard, Server

# What an earlier ClickVote stored for "password123" (bcrypt, cost 4).
LEGACY = "$2b$04$qOCQeJKLKK.juVUrOR13t.kp.TL4mLcpczdhK/qddc6kiGe6rEtfu"


def test_scrypt_hash_round_trip() -> None:
    h = hash_password("correct horse", rounds=4)
    assert h.startswith(f"$scrypt$ln={scrypt_log2n(4)},r=8,p=1$")
    assert check_password("correct horse", h)
    assert not check_password("correct hors", h)
    assert hash_password("correct horse", rounds=4) != h  # salted
    assert not needs_rehash(h, 4) and needs_rehash(h, 5)
    assert needs_rehash(LEGACY, 4)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "plain",
        "$scrypt$ln=6,r=8,p=1$c2FsdA",
        "$scrypt$ln=60,r=8,p=1$c2FsdA$" + "A" * 43,  # asks for far too much memory
        "$scrypt$ln=x,r=8,p=1$c2FsdA$" + "A" * 43,
        "$scrypt$r=8,p=1$c2FsdA$" + "A" * 43,
    ],
)
def test_malformed_hashes_do_not_match(bad: str) -> None:
    assert not check_password("password123", bad)


def _store_hash(server: Server, email: str, hashed: str) -> None:
    db = sqlite3.connect(server.data_dir / "clickvote.db")
    try:
        with db:
            db.execute("UPDATE users SET password_hash = ? WHERE email = ?", (hashed, email))
    finally:
        db.close()


def _stored_hash(server: Server, email: str) -> str:
    db = sqlite3.connect(server.data_dir / "clickvote.db")
    try:
        row = db.execute("SELECT password_hash FROM users WHERE email = ?", (email,)).fetchone()
    finally:
        db.close()
    return str(row[0])


def _login(server: Server, email: str, password: str) -> requests.Response:
    return requests.post(
        f"{server.url}/auth/login", json={"email": email, "password": password}, timeout=TIMEOUT
    )


def test_registration_stores_scrypt(server: Server, dash: Dashboard) -> None:
    assert _stored_hash(server, dash.email).startswith("$scrypt$")


@pytest.mark.skipif(security.legacy_bcrypt() is None, reason="no bcrypt here: see the test below")
def test_legacy_hash_logs_in_and_is_rehashed(server: Server, dash: Dashboard) -> None:
    _store_hash(server, dash.email, LEGACY)
    assert _login(server, dash.email, "wrong-password").status_code == 401
    assert _stored_hash(server, dash.email) == LEGACY  # a wrong password changes nothing
    r = _login(server, dash.email, "password123")
    assert r.status_code == 200, r.text
    rehashed = _stored_hash(server, dash.email)
    assert rehashed.startswith("$scrypt$") and check_password("password123", rehashed)
    assert _login(server, dash.email, "password123").status_code == 200


def test_legacy_hash_without_bcrypt_asks_for_a_reset(
    server: Server,
    dash: Dashboard,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(security, "legacy_bcrypt", lambda: None)
    _store_hash(server, dash.email, LEGACY)
    r = _login(server, dash.email, "password123")
    assert r.status_code == 401
    assert r.json() == {"message": LEGACY_HASH_MESSAGE, "statusCode": 401}
    assert "clickvote setpassword" in LEGACY_HASH_MESSAGE
    assert _stored_hash(server, dash.email) == LEGACY
    # the administrator's reset, as the message says
    monkeypatch.setenv("CLICKVOTE_BCRYPT_ROUNDS", "4")
    d = str(server.data_dir)
    args = ["setpassword", "--data-dir", d, "--email", dash.email, "--password", "new-pass-1"]
    assert main(args) == 0
    assert _login(server, dash.email, "new-pass-1").status_code == 200
    assert _login(server, dash.email, "password123").status_code == 401
    # a user it doesn't know, or a too short password: a message, no traceback
    capsys.readouterr()
    args = ["setpassword", "--data-dir", d, "--email", "nobody@example.com", "--password", "x" * 9]
    assert main(args) == 2
    assert main(["setpassword", "--data-dir", d, "--email", dash.email, "--password", "x"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "no user nobody@example.com" in err
