"""SSH signatures of reports with throwaway keys (needs ssh-keygen, not Docker)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ci.release import ReleaseError, signing

from .factories import allowed_signers, keypair, make_index, make_report, write_signed

# ssh-keygen is a host tool (`inv setup` installs it); the images do not carry it.
pytestmark = pytest.mark.host


@pytest.fixture(autouse=True, scope="module")
def _ssh_keygen() -> None:
    if shutil.which("ssh-keygen") is None:
        pytest.fail("ssh-keygen is missing: install openssh-client (inv setup does)")


@pytest.fixture()
def keys(tmp_path: Path) -> dict[str, Path]:
    return {name: keypair(tmp_path / "keys", name) for name in ("alice", "mallory")}


def test_sign_and_verify(tmp_path: Path, keys: dict[str, Path]) -> None:
    allowed = allowed_signers(tmp_path / "allowed", {"alice@example.invalid": keys["alice"]})
    path = write_signed(tmp_path / "v", make_report(make_index(), "linux/arm64"), keys["alice"])
    sig = signing.verify(path, allowed)
    assert sig.ok and sig.principal == "alice@example.invalid"


def test_tampered_report(tmp_path: Path, keys: dict[str, Path]) -> None:
    allowed = allowed_signers(tmp_path / "allowed", {"alice@example.invalid": keys["alice"]})
    path = write_signed(tmp_path / "v", make_report(make_index(), "linux/arm64"), keys["alice"])
    data = json.loads(path.read_text())
    data["tests"]["failed"] = 0
    data["emulation"]["emulated"] = True
    path.write_text(json.dumps(data))
    sig = signing.verify(path, allowed)
    assert not sig.ok and "tampered" in sig.reason


def test_signer_not_allowed(tmp_path: Path, keys: dict[str, Path]) -> None:
    allowed = allowed_signers(tmp_path / "allowed", {"alice@example.invalid": keys["alice"]})
    path = write_signed(tmp_path / "v", make_report(make_index(), "linux/arm64"), keys["mallory"])
    sig = signing.verify(path, allowed)
    assert not sig.ok and "signer not allowed" in sig.reason


def test_missing_signature(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text("{}")
    assert "no signature" in signing.verify(path, tmp_path / "allowed").reason


def test_sign_needs_a_key(tmp_path: Path) -> None:
    with pytest.raises(ReleaseError, match="no SSH signing key"):
        signing.sign(tmp_path / "r.json", str(tmp_path / "nope"))
