"""A build makes room for itself (ci/space.py): below the free space it wants, it prunes the
build cache, what no build used for a day first, then all of it, and stops with a clear
message when that is not enough. A fake ``docker`` on PATH records what was run and frees
the space each prune would."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from ci import space
from ci.shell import ToolError

FAKE_DOCKER = """#!/bin/sh
echo "$*" >> "{log}"
case "$*" in
  *until=24h*) echo {day} > "{free}" ;;
  *--all*) echo {all} > "{free}" ;;
esac
"""


def _fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, start: float, day: float, all_: float):
    """A fake docker whose prunes set the free space to ``day`` and ``all_`` GB."""
    log, free = tmp_path / "docker.log", tmp_path / "free"
    free.write_text(f"{start}\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "docker"
    exe.write_text(FAKE_DOCKER.format(log=log, free=free, day=day, all=all_))
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")

    def measure(_: Path) -> float:
        return float(free.read_text())

    def ran() -> list[str]:
        return log.read_text().splitlines() if log.exists() else []

    return measure, ran


def test_enough_space_prunes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    measure, ran = _fake(tmp_path, monkeypatch, start=30, day=40, all_=50)
    space.ensure_build_space(False, need_gb=20, root=tmp_path, measure=measure)
    assert ran() == []


def test_old_cache_goes_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    measure, ran = _fake(tmp_path, monkeypatch, start=3, day=25, all_=50)
    space.ensure_build_space(False, need_gb=20, root=tmp_path, measure=measure)
    assert ran() == ["builder prune --force --filter until=24h"]
    err = capsys.readouterr().err
    assert "3.0 GB free" in err and "what no build used for a day" in err
    assert "25.0 GB free" in err


def test_then_all_of_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    measure, ran = _fake(tmp_path, monkeypatch, start=3, day=8, all_=40)
    space.ensure_build_space(False, need_gb=20, root=tmp_path, measure=measure)
    assert ran() == ["builder prune --force --filter until=24h", "builder prune --force --all"]


def test_too_little_even_then_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    measure, ran = _fake(tmp_path, monkeypatch, start=3, day=5, all_=9)
    said = r"only 9\.0 GB free .* build cache empty.*docker system df"
    with pytest.raises(ToolError, match=said):
        space.ensure_build_space(False, need_gb=20, root=tmp_path, measure=measure)
    assert len(ran()) == 2


def test_dry_shows_the_prune_and_runs_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    measure, ran = _fake(tmp_path, monkeypatch, start=3, day=25, all_=50)
    space.ensure_build_space(True, need_gb=20, root=tmp_path, measure=measure)
    assert ran() == []
    assert "[dry] docker builder prune --force --filter until=24h" in capsys.readouterr().err


@pytest.mark.parametrize(("raw", "want"), [("", 20.0), ("7.5", 7.5), (" 0 ", 0.0)])
def test_the_threshold_is_a_setting(monkeypatch: pytest.MonkeyPatch, raw: str, want: float) -> None:
    monkeypatch.setenv(space.ENV, raw)
    assert space.min_free_gb() == want


@pytest.mark.parametrize("raw", ["lots", "-1"])
def test_a_bad_threshold_is_named(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv(space.ENV, raw)
    with pytest.raises(ToolError, match=space.ENV):
        space.min_free_gb()
