"""SSH signatures of verification reports (``ssh-keygen -Y``)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from ci import shell
from ci.release import ReleaseError
from ci.release.config import NAMESPACE
from ci.release.reports import signature_path

TIMEOUT = 60.0


def default_key() -> str:
    for name in ("id_ed25519", "id_ecdsa", "id_rsa"):
        path = Path.home() / ".ssh" / name
        if path.exists():
            return str(path)
    return ""


def sign(report: Path, key: str) -> Path:
    """Write ``report.sig`` with the private key ``key`` (or its ``.pub`` via ssh-agent)."""
    if not key or not Path(os.path.expanduser(key)).exists():
        raise ReleaseError(
            f"no SSH signing key {key!r}: pass --key or set CLICKVOTE_SIGNING_KEY "
            "(ssh-keygen -t ed25519 creates one)"
        )
    sig = signature_path(report)
    sig.unlink(missing_ok=True)
    shell.run(
        [
            "ssh-keygen",
            "-q",
            "-Y",
            "sign",
            "-f",
            os.path.expanduser(key),
            "-n",
            NAMESPACE,
            str(report),
        ],
        timeout=TIMEOUT,
    )
    if not sig.exists():
        raise ReleaseError(f"ssh-keygen did not write {sig}")
    return sig


def fingerprint(public_key_blob: bytes) -> str:
    """``SHA256:...`` as ``ssh-keygen -l`` prints it."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(public_key_blob).digest()).decode().rstrip(
        "="
    )


def key_fingerprint(key: str) -> str:
    """Fingerprint of a signing key, from its ``.pub`` (or ``ssh-keygen -y`` on the key)."""
    path = Path(os.path.expanduser(key))
    pub = path if path.suffix == ".pub" else path.with_name(path.name + ".pub")
    if pub.exists():
        line = pub.read_text()
    else:
        line = shell.text(["ssh-keygen", "-y", "-f", str(path)], timeout=TIMEOUT)
    try:
        return fingerprint(base64.b64decode(line.split()[1], validate=True))
    except (IndexError, binascii.Error) as e:
        raise ReleaseError(f"cannot read the public half of the signing key {key!r}") from e


def signature_key(armored: str) -> str:
    """Fingerprint of the public key inside an SSH signature (PROTOCOL.sshsig); "" if malformed."""
    body = "".join(line for line in armored.splitlines() if line and not line.startswith("-----"))
    try:
        raw = base64.b64decode(body, validate=True)
        if raw[:6] != b"SSHSIG":
            return ""
        (length,) = struct.unpack(">I", raw[10:14])  # after the magic and the version
        blob = raw[14 : 14 + length]
    except (binascii.Error, struct.error):
        return ""
    return fingerprint(blob) if blob and len(blob) == length else ""


@dataclass(frozen=True)
class Signature:
    ok: bool
    principal: str = ""
    reason: str = ""
    key: str = ""  # fingerprint of the key that signed


def find_principals(allowed: Path, sig: Path) -> list[str]:
    proc = shell.run(
        [
            "ssh-keygen",
            "-Y",
            "find-principals",
            "-f",
            str(allowed),
            "-n",
            NAMESPACE,
            "-s",
            str(sig),
        ],
        timeout=TIMEOUT,
        check=False,
    )
    if proc.returncode != 0:
        return []
    return [line.strip() for line in proc.stdout.decode().splitlines() if line.strip()]


def verify(report: Path, allowed: Path) -> Signature:
    """Who signed ``report`` according to ``allowed`` (an allowed_signers file)."""
    sig = signature_path(report)
    if not sig.exists():
        return Signature(False, reason=f"no signature {sig.name}")
    if not allowed.exists():
        return Signature(False, reason=f"no allowed_signers file at {allowed}")
    principals = find_principals(allowed, sig)
    if not principals:
        return Signature(
            False, reason="signed by a key that is not in allowed_signers (signer not allowed)"
        )
    data = report.read_bytes()
    for principal in principals:
        proc = shell.run(
            [
                "ssh-keygen",
                "-Y",
                "verify",
                "-f",
                str(allowed),
                "-I",
                principal,
                "-n",
                NAMESPACE,
                "-s",
                str(sig),
            ],
            stdin=data,
            timeout=TIMEOUT,
            check=False,
        )
        if proc.returncode == 0:
            return Signature(True, principal=principal, key=signature_key(sig.read_text()))
    return Signature(
        False,
        principal=principals[0],
        reason=f"signature by {principals[0]} does not match the report's "
        "contents (tampered after signing?)",
    )
