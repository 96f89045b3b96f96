"""Proof of work before a first vote: stateless challenges, one hash to check a solution.

A challenge is `v1.<env id>.<expiry, s since the epoch>.<difficulty>.<nonce>.<mac>`, the mac
an HMAC-SHA256 of the rest under a key derived from the master key (security.Box.sign), so
the server keeps nothing per challenge it issues. A solution is a counter (decimal digits)
such that SHA-256(challenge + counter) starts with `difficulty` zero bits. The server accepts
each challenge's solution once (`Ledger`: the challenges used, until they expire; with
Redis, also marked there, so once across instances) and then trusts the socket and the voter
for TRUST seconds (per instance), so only a first vote pays.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict

from clickvote.security import Box

TTL = 300  # seconds a challenge may be solved and used in
TRUST = 3600  # seconds a socket or voter that solved one is trusted
MAX_DIFFICULTY = 24  # bits; ~16.8 million hashes on average
MAX_COUNTER = 20  # digits
USED = "pow.challenge was already used: fetch a new one"
LEDGER_MAX = 200_000  # challenges used and voters trusted remembered (oldest forgotten first)


class ProofError(ValueError):
    """A solution the server refuses (its message says why)."""


def issue(box: Box, env_id: str, difficulty: int, now: float | None = None) -> dict[str, object]:
    """A new challenge for `env_id`: {challenge, difficulty, expires (ms)}."""
    expires = int(now if now is not None else time.time()) + TTL
    body = f"v1.{env_id}.{expires}.{difficulty}.{secrets.token_hex(12)}"
    mac = box.sign("pow|" + body)[:32]
    return {"challenge": f"{body}.{mac}", "difficulty": difficulty, "expires": expires * 1000}


def leading_zero_bits(digest: bytes) -> int:
    value = int.from_bytes(digest, "big")
    return len(digest) * 8 - value.bit_length()


def work(challenge: str, counter: int) -> int:
    """The leading zero bits of SHA-256(challenge + counter)."""
    return leading_zero_bits(hashlib.sha256(f"{challenge}{counter}".encode()).digest())


def solve(challenge: str, difficulty: int) -> int:
    """The first counter that does the work (what the embed's Web Worker does)."""
    counter = 0
    while work(challenge, counter) < difficulty:
        counter += 1
    return counter


def check(
    box: Box, env_id: str, difficulty: int, proof: object, now: float | None = None
) -> tuple[str, float]:
    """(the challenge, its expiry) of a valid solution `proof` = {challenge, counter} for an
    environment that asks `difficulty` bits now; else ProofError."""
    if not isinstance(proof, dict):
        raise ProofError("pow must be {challenge, counter}")
    challenge, counter = proof.get("challenge"), proof.get("counter")
    if isinstance(counter, str) and counter.isdigit() and len(counter) <= MAX_COUNTER:
        counter = int(counter)
    if not isinstance(counter, int) or isinstance(counter, bool) or counter < 0:
        raise ProofError("pow.counter must be a non-negative integer")
    if counter >= 10**MAX_COUNTER or not isinstance(challenge, str) or len(challenge) > 300:
        raise ProofError("pow.challenge is not a challenge of this server")
    body, _, mac = challenge.rpartition(".")
    parts = body.split(".")
    if len(parts) != 5 or parts[0] != "v1" or not _signed(box, body, mac):
        raise ProofError("pow.challenge is not a challenge of this server")
    _, for_env, expires, bits, _nonce = parts
    if for_env != env_id:
        raise ProofError("pow.challenge was issued for another environment")
    if int(expires) < (now if now is not None else time.time()):
        raise ProofError("pow.challenge expired: fetch a new one")
    if int(bits) < difficulty:
        raise ProofError("pow.challenge asks less work than this environment now does")
    if work(challenge, counter) < int(bits):
        raise ProofError("pow.counter does not do the challenge's work")
    return challenge, float(expires)


def _signed(box: Box, body: str, mac: str) -> bool:
    return mac.isascii() and hmac.compare_digest(box.sign("pow|" + body)[:32], mac)


class Ledger:
    """Per instance, in memory and bounded: the challenges already used (until they expire)
    and the (environment, voter) pairs trusted (until TRUST runs out)."""

    def __init__(self, max_entries: int = LEDGER_MAX) -> None:
        self.max_entries = max_entries
        self._used: OrderedDict[str, float] = OrderedDict()
        self._trusted: OrderedDict[tuple[str, str], float] = OrderedDict()

    def use(self, challenge: str, expires: float, now: float | None = None) -> None:
        """Spend a challenge; ProofError if it was spent before."""
        now = time.time() if now is None else now
        while self._used and next(iter(self._used.values())) < now:
            self._used.popitem(last=False)  # expired: its challenge is refused anyway
        if challenge in self._used:
            raise ProofError(USED)
        self._used[challenge] = expires
        while len(self._used) > self.max_entries:
            self._used.popitem(last=False)

    def trust(self, env_id: str, voter: str, now: float | None = None) -> None:
        key = (env_id, voter)
        self._trusted.pop(key, None)
        self._trusted[key] = (time.time() if now is None else now) + TRUST
        while len(self._trusted) > self.max_entries:
            self._trusted.popitem(last=False)

    def trusted(self, env_id: str, voter: str, now: float | None = None) -> bool:
        until = self._trusted.get((env_id, voter))
        return until is not None and until > (time.time() if now is None else now)
