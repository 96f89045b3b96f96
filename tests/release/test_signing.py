"""SSH signatures of reports with throwaway keys (needs ssh-keygen, not Docker)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from ci.release import ReleaseError, config, machine, reports, signing, verify

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


def test_signature_names_its_key(tmp_path: Path, keys: dict[str, Path]) -> None:
    """The signer a report names is the key's fingerprint, as ssh-keygen -l prints it."""
    allowed = allowed_signers(tmp_path / "allowed", {"alice@example.invalid": keys["alice"]})
    path = write_signed(tmp_path / "v", make_report(make_index(), "linux/arm64"), keys["alice"])
    listed = subprocess.run(
        ["ssh-keygen", "-l", "-f", f"{keys['alice']}.pub"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.split()[1]
    assert signing.key_fingerprint(str(keys["alice"])) == listed
    Path(f"{keys['alice']}.pub").unlink()  # derived from the private key alone too
    assert signing.key_fingerprint(str(keys["alice"])) == listed
    sig = signing.verify(path, allowed)
    assert sig.ok and sig.key == listed == json.loads(path.read_text())["signer"]


def test_verify_writes_the_signer(tmp_path: Path, keys: dict[str, Path]) -> None:
    host = machine.Host("x86_64", "Linux 6.1", "Debian", "cpu", "0" * 64, {})
    index = make_index()
    report = verify.build_report(
        config.load({}, environ={}),
        "9.9.9-rc.1",
        index,
        "linux/amd64",
        index.images["linux/amd64"].digest,
        host,
        signing.key_fingerprint(str(keys["alice"])),
        {"machine": "x86_64", "cpu_family": "x86", "process_exe": "/usr/bin/python3.11"},
        {"failed": 0, "passed": 5},
        0.0,
        1.0,
    )
    assert report["signer"] == signing.key_fingerprint(str(keys["alice"]))
    assert reports.get(report, "signer").startswith("SHA256:")


def test_a_key_listed_under_two_names_is_one_signer(tmp_path: Path, keys: dict[str, Path]) -> None:
    """Whatever names allowed_signers gives a key, its reports resolve to one of them."""
    allowed = allowed_signers(
        tmp_path / "allowed",
        {"alice@example.invalid": keys["alice"], "bob@example.invalid": keys["alice"]},
    )
    index = make_index()
    sigs = [
        signing.verify(
            write_signed(tmp_path / "v", make_report(index, p, m), keys["alice"]), allowed
        )
        for p, m in [("linux/arm64", "pi-1"), ("linux/arm64", "pi-2"), ("linux/arm/v7", "pi-3")]
    ]
    assert all(s.ok for s in sigs)
    assert {(s.principal, s.key) for s in sigs} == {
        ("alice@example.invalid", signing.key_fingerprint(str(keys["alice"])))
    }
