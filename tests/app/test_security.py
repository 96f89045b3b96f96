"""Keys, authenticated encryption, tokens, rate limiter."""

from __future__ import annotations

import sqlite3
import string

import pytest

from clickvote.ratelimit import RateLimiter
from clickvote.security import (
    Box,
    CryptoError,
    b64d,
    b64e,
    check_password,
    hash_password,
    random_key,
    time_ordered_id,
)

from .conftest import Dashboard, Server

ALPHABET = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"


def test_keys_format_and_independence() -> None:
    keys = {random_key("pb_") for _ in range(200)}
    assert len(keys) == 200
    assert all(len(k) == 35 and k[3:].isalnum() for k in keys)


def test_authenticated_encryption_detects_tampering() -> None:
    box = Box(b"k" * 32)
    blob = box.encrypt(b"hello world", "p")
    assert box.decrypt(blob, "p") == b"hello world"
    raw = bytearray(b64d(blob))
    raw[20] ^= 1
    with pytest.raises(CryptoError):
        box.decrypt(b64e(bytes(raw)), "p")
    with pytest.raises(CryptoError):
        box.decrypt(blob, "other-purpose")
    with pytest.raises(CryptoError):
        Box(b"z" * 32).decrypt(blob, "p")
    assert box.encrypt(b"hello world", "p") != blob  # random nonce


def test_login_tokens_expire_and_cannot_be_forged() -> None:
    box = Box(b"m" * 32)
    token, exp = box.login_token("env1", "pb_x", 60)
    assert box.read_login_token(token) == {"id": "env1", "key": "pb_x", "expiration": exp}
    expired, _ = box.login_token("env1", "pb_x", -1)
    with pytest.raises(CryptoError, match="expired"):
        box.read_login_token(expired)
    with pytest.raises(CryptoError):
        Box(b"n" * 32).read_login_token(token)


def test_only_the_issued_spelling_of_a_token_is_accepted() -> None:
    """Every one-character change is refused, including those base64 decoding would forgive
    (the last character's unused bits) and characters outside the alphabet (skipped)."""
    box = Box(b"m" * 32)
    for env_id in ("e", "e1", "env", "env1"):  # every length mod 4, so every padding case
        token, _ = box.login_token(env_id, random_key("pb_"), 60)
        for i in range(len(token)):
            # the last characters carry the unused bits: every letter there
            for c in ALPHABET + "!=" if i >= len(token) - 2 else "AB!=":
                forged = token[:i] + c + token[i + 1 :]
                if forged != token:
                    with pytest.raises(CryptoError):
                        box.read_login_token(forged)
        with pytest.raises(CryptoError):
            box.read_login_token(token + "A")


def test_passwords_hashed() -> None:
    h = hash_password("correct horse", rounds=4)
    assert h.startswith("$scrypt$") and check_password("correct horse", h)
    assert not check_password("wrong", h)


def test_secret_keys_sealed_at_rest(server: Server, dash: Dashboard) -> None:
    secret = dash.keys()["secretKey"]
    db = sqlite3.connect(server.data_dir / "clickvote.db")
    try:
        dump = "\n".join(db.iterdump())
    finally:
        db.close()
    assert secret not in dump and dash.keys()["publicKey"] in dump
    mode = (server.data_dir / "master.key").stat().st_mode & 0o777
    assert mode == 0o600


def test_rate_limiter_token_bucket() -> None:
    rl = RateLimiter(burst=2, per_second=1)
    assert rl.take("a", now=0) == 0 and rl.take("a", now=0) == 0
    assert rl.take("a", now=0) == pytest.approx(1.0)
    assert rl.take("b", now=0) == 0
    assert rl.take("a", now=1.0) == 0


def test_time_ordered_ids_sort_by_time_and_differ_within_a_millisecond() -> None:
    same_ms = {time_ordered_id(1_700_000_000_000) for _ in range(10_000)}
    assert len(same_ms) == 10_000
    assert all(len(i) == 24 and int(i, 16) >= 0 for i in same_ms)
    assert max(same_ms) < min(time_ordered_id(1_700_000_000_001) for _ in range(100))
