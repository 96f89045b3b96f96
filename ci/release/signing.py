"""SSH signatures of verification reports (``ssh-keygen -Y``)."""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import re
import struct
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ci import shell
from ci.release import ReleaseError, signers
from ci.release.config import NAMESPACE
from ci.release.reports import signature_path
from ci.release.signers import fingerprint

TIMEOUT = 60.0


def default_key() -> str:
    for name in ("id_ed25519", "id_ecdsa", "id_rsa"):
        path = Path.home() / ".ssh" / name
        if path.exists():
            return str(path)
    return ""


@contextlib.contextmanager
def key_from_env(name: str) -> Iterator[str]:
    """The private key held by environment variable ``name`` as a file readable only by us,
    removed afterwards ("" when ``name`` is empty)."""
    if not name:
        yield ""
        return
    text = os.environ.get(name, "")
    if "PRIVATE KEY" not in text:
        raise ReleaseError(f"${name} holds no SSH private key")
    with tempfile.TemporaryDirectory(prefix="clickvote-key-") as d:
        path = Path(d) / "key"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text.strip() + "\n")
        yield str(path)


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


_WINDOW = re.compile(r"key (?:has expired|is not yet valid): .*")


@dataclass(frozen=True)
class Signature:
    ok: bool
    principal: str = ""
    reason: str = ""
    key: str = ""  # fingerprint of the key that signed
    outside: str = ""  # a genuine signature by a listed key, made outside the key's validity


def _window_options(at: datetime | None) -> list[str]:
    return [f"-Overify-time={signers.ssh_time(at)}"] if at else []


def find_principals(allowed: Path, sig: Path, at: datetime | None) -> tuple[list[str], str]:
    """(principals whose key made ``sig`` and was valid at ``at``, ssh-keygen's complaint)."""
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
            *_window_options(at),
        ],
        timeout=TIMEOUT,
        check=False,
    )
    found = _WINDOW.search(proc.stderr.decode(errors="replace"))
    if proc.returncode != 0:
        return [], found.group(0) if found else ""
    return [line.strip() for line in proc.stdout.decode().splitlines() if line.strip()], ""


def genuine(report: Path, sig: Path) -> bool:
    """Whether ``sig`` is a valid signature of ``report`` by the key it names, whoever that is."""
    proc = shell.run(
        ["ssh-keygen", "-Y", "check-novalidate", "-n", NAMESPACE, "-s", str(sig)],
        stdin=report.read_bytes(),
        timeout=TIMEOUT,
        check=False,
    )
    return proc.returncode == 0


def verify(report: Path, allowed: Path, at: datetime | None = None) -> Signature:
    """Who signed ``report`` according to ``allowed`` (an allowed_signers file), with the
    keys' ``valid-after``/``valid-before`` judged at ``at`` (the signing time; default now)."""
    sig = signature_path(report)
    if not sig.exists():
        return Signature(False, reason=f"no signature {sig.name}")
    if not allowed.exists():
        return Signature(False, reason=f"no allowed_signers file at {allowed}")
    key = signature_key(sig.read_text())
    principals, window = find_principals(allowed, sig, at)
    if not principals:
        names = signers.principals_of(allowed.read_text(), key)
        if window and names and genuine(report, sig):
            when = signers.iso(at) if at else "now"
            return Signature(True, principal=names[0], key=key, outside=f"{window} (signed {when})")
        if window and names:
            return _tampered(names[0])
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
                *_window_options(at),
            ],
            stdin=data,
            timeout=TIMEOUT,
            check=False,
        )
        if proc.returncode == 0:
            return Signature(True, principal=principal, key=key)
    return _tampered(principals[0])


def _tampered(principal: str) -> Signature:
    return Signature(
        False,
        principal=principal,
        reason=f"signature by {principal} does not match the report's "
        "contents (tampered after signing?)",
    )
