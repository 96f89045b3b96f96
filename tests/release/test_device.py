"""The test image's `verify`: which candidate it names, and its errors (no Docker)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ci.release import ReleaseError, device, distribution


def test_the_image_names_its_candidate() -> None:
    cfg, tag = device.candidate_config(
        {
            "CLICKVOTE_VERIFY_CANDIDATE": "registry.example.invalid:5000/team/clickvote:1.2.0-rc.3",
            "CLICKVOTE_VERIFY_TESTS": "team/clickvote-test",
        }
    )
    assert tag == "1.2.0-rc.3"
    assert cfg.image(tag) == "registry.example.invalid:5000/team/clickvote:1.2.0-rc.3"
    assert cfg.image(tag, test=True).endswith("/team/clickvote-test:1.2.0-rc.3")


def test_environment_variables_win() -> None:
    cfg, _ = device.candidate_config(
        {
            "CLICKVOTE_VERIFY_CANDIDATE": "127.0.0.1:5000/clickvote:1.0.0-rc.1",
            "CLICKVOTE_REGISTRY": "mirror.example.invalid",
        }
    )
    assert cfg.registry == "mirror.example.invalid" and cfg.repository == "clickvote"


def test_references() -> None:
    assert distribution.split("127.0.0.1:5000/a/b@sha256:" + "0" * 64)[2].startswith("sha256:")
    with pytest.raises(ReleaseError):
        distribution.split("no-tag")


def test_no_candidate_no_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert device.main(["--out", str(tmp_path)], environ={}) == 1
    assert "pass its TAG" in capsys.readouterr().err
    assert device.main(["1.0.0-rc.1", "--out", str(tmp_path / "missing")], environ={}) == 1
    assert "is not a directory" in capsys.readouterr().err
