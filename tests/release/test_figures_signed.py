"""`inv promote --dry` and `inv release-notes` show each signed report's figures per
platform and device (ssh-keygen signs; the registry is faked)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ci.release import config, notes, promote

from .factories import TAG, TEST_IMAGES, allowed_signers, keypair, make_index, write_signed
from .test_figures import with_figures

pytestmark = pytest.mark.host  # ssh-keygen is a host tool


@pytest.fixture()
def vdir(tmp_path: Path) -> Path:
    if shutil.which("ssh-keygen") is None:
        pytest.fail("ssh-keygen is missing: install openssh-client (inv setup does)")
    key, stranger = keypair(tmp_path / "k", "pi"), keypair(tmp_path / "k", "stranger")
    vdir = tmp_path / "verifications"
    vdir.mkdir()
    allowed_signers(vdir / "allowed_signers", {"pi@example.invalid": key})
    write_signed(vdir, with_figures("linux/arm64", "Raspberry Pi 5 Model B Rev 1.0"), key)
    emulated = with_figures("linux/arm/v7", "Standard PC (Q35)", emulated=True, votes_per_s=77.0)
    emulated["emulation"]["emulated"] = True
    write_signed(vdir, emulated, key)
    write_signed(vdir, with_figures("linux/arm64", "Forged Board", votes_per_s=1e6), stranger)
    return vdir


def test_promote_dry_shows_figures_beside_the_quorum(
    vdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(promote, "test_images", lambda cfg, tag: TEST_IMAGES)
    cfg = config.load({}, environ={}).with_overrides(verifications_dir=vdir)
    promote.evaluate(cfg, TAG, make_index(), vdir / "allowed_signers")
    out = capsys.readouterr().out
    quorum_at = out.index("verdict")
    figures_at = out.index("votes/s")
    assert quorum_at < figures_at
    pi = next(line for line in out.splitlines() if "Raspberry Pi 5" in line)
    assert pi.startswith("linux/arm64") and "812.5" in pi and "1.104" in pi
    assert next(line for line in out.splitlines() if "Q35" in line).endswith("emulated")


def test_release_notes_list_signed_figures_per_device(vdir: Path) -> None:
    cfg = config.load({}, environ={}).with_overrides(verifications_dir=vdir)
    text = notes.release_notes(cfg, TAG)
    assert "| linux/arm64 | Raspberry Pi 5 Model B Rev 1.0 | 812.5 | 1.104 | 47.9 | 3.21 |" in text
    assert "Q35" in text and "emulated" in text
    assert "Forged Board" not in text  # not signed by an allowed signer
