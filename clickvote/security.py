"""Keys, authenticated encryption (stdlib only), passwords, sessions, signatures and tokens.

Passwords are hashed with the standard library's scrypt on every platform:
    $scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt>$<key>   (salt and key base64url, no padding)
Hashes that versions before it wrote with bcrypt ($2b$...) still verify where the optional
`bcrypt` package is installed, and are replaced by scrypt ones at the next login
(needs_rehash); where it is not, checking one raises LegacyHashError.

Authenticated encryption is encrypt-then-MAC:
    keystream block i = HMAC-SHA256(enc_key, nonce || i)      (counter mode)
    tag               = HMAC-SHA256(mac_key, purpose || nonce || ciphertext)
    blob              = version(1) || nonce(16) || ciphertext || tag(32)
The two keys are derived from the master key with HMAC-SHA256 and different labels, and the
purpose string binds a blob to its use (a login token can't be replayed as a secret key).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import os
import random
import secrets
import string
import time
from pathlib import Path
from types import ModuleType
from typing import Any


@functools.cache
def legacy_bcrypt() -> ModuleType | None:
    """The optional bcrypt package (there is no wheel for every platform), imported at the
    first hash written before scrypt, never at start-up; None where it is not installed."""
    try:
        import bcrypt
    except ImportError:  # pragma: no cover - exercised by forcing it off in the tests
        return None
    return bcrypt


ALPHANUM = string.ascii_letters + string.digits
KEY_BODY_LEN = 32
_VERSION = b"\x01"
_NONCE = 16
_TAG = 32


def random_key(prefix: str) -> str:
    """`pb_`/`sk_` + 32 alphanumerics, drawn independently with `secrets`."""
    return prefix + "".join(secrets.choice(ALPHANUM) for _ in range(KEY_BODY_LEN))


def new_id() -> str:
    return secrets.token_hex(12)


# Unpredictability is not needed in a vote event's id, only uniqueness: 48 bits from a
# generator seeded from the OS, not a system call per vote.
_ID_BITS = random.Random(secrets.randbits(128))


def time_ordered_id(ms: int) -> str:
    """Like new_id() (24 hex digits), led by the time in milliseconds: rows keyed by such
    ids are appended at the end of their index rather than at random places in it, which
    dirties fewer pages per commit (a third fewer WAL pages per batch of votes). The rest
    is 48 random bits (ids of one millisecond on any instance collide with odds ~n²/2^49)."""
    return f"{ms:012x}{_ID_BITS.getrandbits(48):012x}"


def b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CryptoError(ValueError):
    """A blob or token failed authentication, or is malformed."""


class Box:
    """Authenticated encryption with keys derived from one master key."""

    def __init__(self, master_key: bytes) -> None:
        if len(master_key) < 32:
            raise ValueError("master key must be at least 32 bytes")
        self._enc = hmac.new(master_key, b"clickvote/enc/v1", hashlib.sha256).digest()
        self._mac = hmac.new(master_key, b"clickvote/mac/v1", hashlib.sha256).digest()
        self._sig = hmac.new(master_key, b"clickvote/sig/v1", hashlib.sha256).digest()

    def _keystream(self, nonce: bytes, length: int) -> bytes:
        out = bytearray()
        counter = 0
        while len(out) < length:
            block = nonce + counter.to_bytes(8, "big")
            out += hmac.new(self._enc, block, hashlib.sha256).digest()
            counter += 1
        return bytes(out[:length])

    def _tag(self, purpose: str, nonce: bytes, ct: bytes) -> bytes:
        msg = purpose.encode() + b"\x00" + nonce + ct
        return hmac.new(self._mac, msg, hashlib.sha256).digest()

    def encrypt(self, plaintext: bytes, purpose: str) -> str:
        nonce = secrets.token_bytes(_NONCE)
        ks = self._keystream(nonce, len(plaintext))
        ct = bytes(a ^ b for a, b in zip(plaintext, ks, strict=True))
        return b64e(_VERSION + nonce + ct + self._tag(purpose, nonce, ct))

    def decrypt(self, blob: str, purpose: str) -> bytes:
        try:
            raw = b64d(blob)
        except (ValueError, TypeError) as exc:
            raise CryptoError("malformed") from exc
        if b64e(raw) != blob:  # only the one spelling: stray characters or padding bits
            raise CryptoError("malformed")
        if len(raw) < 1 + _NONCE + _TAG or raw[:1] != _VERSION:
            raise CryptoError("malformed")
        nonce, ct, tag = raw[1 : 1 + _NONCE], raw[1 + _NONCE : -_TAG], raw[-_TAG:]
        if not hmac.compare_digest(tag, self._tag(purpose, nonce, ct)):
            raise CryptoError("authentication failed")
        ks = self._keystream(nonce, len(ct))
        return bytes(a ^ b for a, b in zip(ct, ks, strict=True))

    def sign(self, message: str) -> str:
        return hmac.new(self._sig, message.encode(), hashlib.sha256).hexdigest()

    def verify(self, message: str, signature: str) -> bool:
        # compare_digest refuses non-ASCII str: such a signature is simply wrong
        return signature.isascii() and hmac.compare_digest(self.sign(message), signature)

    # --- secret keys at rest -------------------------------------------------------------
    def seal_secret(self, secret_key: str) -> str:
        return self.encrypt(secret_key.encode(), "secret-key")

    def open_secret(self, sealed: str) -> str:
        return self.decrypt(sealed, "secret-key").decode()

    # --- socket login tokens ---------------------------------------------------------------
    def login_token(self, env_id: str, key: str, ttl: int) -> tuple[str, int]:
        expiration = int(time.time() * 1000) + ttl * 1000
        body = json.dumps({"id": env_id, "key": key, "expiration": expiration})
        return self.encrypt(body.encode(), "login-token"), expiration

    def read_login_token(self, token: str) -> dict[str, Any]:
        """Return {id, key, expiration}; raises CryptoError if forged, malformed or expired."""
        data = json.loads(self.decrypt(token, "login-token"))
        if not isinstance(data, dict) or not isinstance(data.get("expiration"), int):
            raise CryptoError("malformed")
        if data["expiration"] < time.time() * 1000:
            raise CryptoError("expired")
        return data

    # --- anonymous voter tokens ------------------------------------------------------------
    def voter_token(self, env_id: str, ttl: int) -> tuple[str, str, int]:
        voter_id = "anon_" + secrets.token_hex(12)
        expiration = int(time.time()) + ttl
        mac = self.sign(f"voter|{env_id}|{voter_id}|{expiration}")
        return voter_id, f"{voter_id}.{expiration}.{mac}", expiration

    def read_voter_token(self, env_id: str, token: str) -> str:
        """Return the voter id the token was issued for; CryptoError if invalid/expired."""
        parts = token.split(".")
        if len(parts) != 3 or not parts[1].isdigit():
            raise CryptoError("malformed")
        voter_id, exp, mac = parts
        if not self.verify(f"voter|{env_id}|{voter_id}|{exp}", mac):
            raise CryptoError("authentication failed")
        if int(exp) < time.time():
            raise CryptoError("expired")
        return voter_id


def load_master_key(data_dir: str, configured: str = "") -> bytes:
    """CLICKVOTE_MASTER_KEY (hex, base64url or raw >= 32 chars), else <data_dir>/master.key."""
    if configured:
        try:
            raw = bytes.fromhex(configured)
        except ValueError:
            try:
                raw = b64d(configured)
            except ValueError:
                raw = configured.encode()
        if len(raw) < 32:
            raw = hashlib.sha256(configured.encode()).digest() if len(configured) >= 32 else raw
        if len(raw) < 32:
            raise ValueError("CLICKVOTE_MASTER_KEY is too short (need 32 bytes)")
        return raw
    path = Path(data_dir) / "master.key"
    if path.exists():
        return bytes.fromhex(path.read_text().strip())
    key = secrets.token_bytes(32)
    write_master_key(data_dir, key)
    return key


def write_master_key(data_dir: str, key: bytes) -> None:
    """<data_dir>/master.key, created 0600 (never over an existing one)."""
    path = Path(data_dir) / "master.key"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key.hex() + "\n")


def write_private(path: str, text: str) -> None:
    """Write a file only its owner can read (mode 0600, also if it existed)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


def sign_user_id(secret_key: str, user_id: str) -> str:
    """What a site's backend computes: HMAC-SHA256(secret key, userId) as hex."""
    return hmac.new(secret_key.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def check_user_signature(secret_key: str, user_id: str, signature: str) -> bool:
    if not signature.isascii():  # compare_digest refuses non-ASCII str
        return False
    return hmac.compare_digest(sign_user_id(secret_key, user_id), signature.lower())


SCRYPT_PREFIX = "$scrypt$"
SCRYPT_R = 8
SCRYPT_P = 1
_SALT = 16
_KEY = 32
_MAX_LN = 20  # 2^20 * 128 * 8 = 1 GiB: no stored hash may ask for more


class LegacyHashError(Exception):
    """A bcrypt hash (written by a version before scrypt) and no bcrypt here to check it."""


def scrypt_log2n(rounds: int) -> int:
    """log2 of scrypt's N for the cost setting (CLICKVOTE_BCRYPT_ROUNDS): 12, the default,
    gives 2^14 (16 MiB and about as long as bcrypt's 12); each step doubles time and memory."""
    return max(1, min(rounds + 2, _MAX_LN))


def _scrypt(password: str, salt: bytes, ln: int, r: int, p: int) -> bytes:
    n = 1 << ln
    return hashlib.scrypt(
        password.encode("utf-8", "surrogatepass"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        maxmem=128 * r * (n + p + 2) + (1 << 20),
        dklen=_KEY,
    )


def hash_password(password: str, rounds: int = 12) -> str:
    ln, salt = scrypt_log2n(rounds), secrets.token_bytes(_SALT)
    key = _scrypt(password, salt, ln, SCRYPT_R, SCRYPT_P)
    return f"{SCRYPT_PREFIX}ln={ln},r={SCRYPT_R},p={SCRYPT_P}${b64e(salt)}${b64e(key)}"


def _scrypt_params(hashed: str) -> tuple[int, int, int, bytes, bytes] | None:
    """(ln, r, p, salt, key) of a well-formed scrypt hash, else None."""
    parts = hashed.split("$")
    if len(parts) != 5 or parts[0] or parts[1] != "scrypt":
        return None
    try:
        params = dict(kv.split("=", 1) for kv in parts[2].split(","))
        ln, r, p = int(params["ln"]), int(params["r"]), int(params["p"])
        salt, key = b64d(parts[3]), b64d(parts[4])
    except (ValueError, KeyError):
        return None
    if not (1 <= ln <= _MAX_LN and 1 <= r <= 32 and 1 <= p <= 16 and salt and len(key) == _KEY):
        return None
    return ln, r, p, salt, key


def is_legacy_hash(hashed: str) -> bool:
    return hashed.startswith(("$2a$", "$2b$", "$2y$"))


def check_password(password: str, hashed: str) -> bool:
    """True if ``password`` matches; LegacyHashError for a bcrypt hash where bcrypt is absent."""
    if is_legacy_hash(hashed):
        bcrypt = legacy_bcrypt()
        if bcrypt is None:
            raise LegacyHashError("bcrypt is not installed")
        try:
            return bcrypt.checkpw(password.encode("utf-8", "surrogatepass")[:72], hashed.encode())
        except ValueError:
            return False
    params = _scrypt_params(hashed)
    if params is None:
        return False
    ln, r, p, salt, key = params
    return hmac.compare_digest(_scrypt(password, salt, ln, r, p), key)


def needs_rehash(hashed: str, rounds: int) -> bool:
    """True unless ``hashed`` is a scrypt hash at the cost the setting asks for now."""
    params = _scrypt_params(hashed)
    return params is None or params[:3] != (scrypt_log2n(rounds), SCRYPT_R, SCRYPT_P)


def new_session_token() -> tuple[str, str]:
    """Return (token for the cookie, hash to store)."""
    token = secrets.token_urlsafe(32)
    return token, hash_token(token)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
