"""Who may sign, and when: allowed_signers keys and the revocation list. Pure.

``verifications/allowed_signers`` is ssh-keygen's ALLOWED SIGNERS file; a key's
``valid-after``/``valid-before`` options bound when it may sign, and ssh-keygen
checks them at the report's signing time (``-Overify-time``). ``verifications/revoked``
lists signers (an allowed_signers name: all of that person's keys; or one key's
``SHA256:`` fingerprint) whose reports signed at or after a time no longer count::

    # <signer or key> <from (ISO 8601, UTC)> <reason>
    alice@example.org 2026-11-01T00:00:00Z laptop stolen
    SHA256:q1w2e3... 2026-12-01 rotated to a new key

A report's signing time (``signed_at``) is its signer's claim like everything in
it: revoke a key that may be misused from before its first possible misuse.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ci.release import ReleaseError

REVOKED = "revoked"  # beside allowed_signers
_KEY_TYPES = ("ssh-", "ecdsa-", "sk-")


def parse_time(text: str, where: str = "time") -> datetime:
    """An ISO 8601 date or time; without a zone it is UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError as e:
        raise ReleaseError(f"{where}: {text!r} is not an ISO 8601 time") from e
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ssh_time(value: datetime) -> str:
    """The form ``ssh-keygen -Overify-time=`` reads (UTC)."""
    return value.astimezone(UTC).strftime("%Y%m%d%H%M%SZ")


def signing_time(report: Any) -> datetime | None:
    """When the report says it was signed (``signed_at``; older reports: ``started_at``)."""
    if not isinstance(report, Mapping):
        return None
    value = report.get("signed_at") or report.get("started_at")
    if not isinstance(value, str):
        return None
    try:
        return parse_time(value)
    except ReleaseError:
        return None


def fingerprint(blob: bytes) -> str:
    """``SHA256:...`` as ``ssh-keygen -l`` prints it."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def principals_of(allowed_text: str, key: str) -> list[str]:
    """The names allowed_signers gives the key with fingerprint ``key``."""
    names: list[str] = []
    for raw in allowed_text.splitlines():
        tokens = raw.split()
        if not tokens or tokens[0].startswith("#"):
            continue
        for i, token in enumerate(tokens[1:-1], 1):
            if token.startswith(_KEY_TYPES):
                try:
                    blob = base64.b64decode(tokens[i + 1], validate=True)
                except binascii.Error:
                    continue
                if fingerprint(blob) == key:
                    names.extend(n for n in tokens[0].split(",") if n not in names)
                break
    return names


@dataclass(frozen=True)
class Revocation:
    signer: str  # an allowed_signers name or a key fingerprint
    since: datetime
    reason: str


def parse_revoked(text: str, source: str = REVOKED) -> list[Revocation]:
    out = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 2)
        if len(parts) < 3:
            raise ReleaseError(f"{source}:{n}: expected '<signer or key> <from time> <reason>'")
        out.append(Revocation(parts[0], parse_time(parts[1], f"{source}:{n}"), parts[2]))
    return out


def load_revoked(allowed: Path) -> list[Revocation]:
    """The revocation list beside ``allowed`` (none when there is no such file)."""
    path = allowed.with_name(REVOKED)
    return parse_revoked(path.read_text(), str(path)) if path.exists() else []


def revoked(
    revocations: Iterable[Revocation], principal: str, key: str, signed: datetime | None
) -> str:
    """Why a report ``principal`` signed with ``key`` at ``signed`` must be ignored, or ""."""
    for r in revocations:
        if r.signer not in (principal, key):
            continue
        if signed is None or signed >= r.since:
            who = f"key {key} of {principal}" if r.signer == key else f"signer {principal}"
            when = iso(signed) if signed else "an unknown time"
            return f"{who} revoked from {iso(r.since)} ({r.reason}); signed at {when}"
    return ""
