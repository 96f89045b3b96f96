"""One shell toolkit for ci/ (ci/shell.py): the build side and the release side raise one
error type, show a command one way, and leave it unrun under --dry in one place."""

from __future__ import annotations

import importlib.util
import shlex
import sys
from pathlib import Path

import pytest

from ci import build, host, shell
from ci.release import ReleaseError


def test_one_error_type_and_one_module() -> None:
    assert host.HostError is build.BuildError is ReleaseError is shell.ToolError
    assert importlib.util.find_spec("ci.release.shell") is None
    assert shell.quote is shlex.join


def test_a_command_is_shown_one_way(capsys: pytest.CaptureFixture[str]) -> None:
    shell.show(["echo", "a b"], dry=False)
    shell.show(["echo", "a b"], dry=True)
    out = capsys.readouterr()
    assert out.out == "" and out.err == "$ echo 'a b'\n[dry] echo 'a b'\n"


def test_dry_runs_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    made = tmp_path / "made"
    shell.change(["touch", str(made)], dry=True)
    assert not made.exists() and capsys.readouterr().err == f"[dry] touch {made}\n"
    shell.change(["touch", str(made)], dry=False, cwd=tmp_path)
    assert made.exists()


def test_failures_are_tool_errors(tmp_path: Path) -> None:
    with pytest.raises(shell.ToolError, match=r"command failed \(3\)"):
        shell.change([sys.executable, "-c", "raise SystemExit(3)"], dry=False)
    # under qemu-user a program that is not there fails as an exit status 127
    with pytest.raises(shell.ToolError, match=r"is not installed|command failed \(127\)"):
        shell.run([str(tmp_path / "no-such-program")])
    with pytest.raises(shell.ToolError, match="timed out"):
        shell.run([sys.executable, "-c", "import time; time.sleep(5)"], timeout=0.2)
    assert shell.output([str(tmp_path / "no-such-program")]) is None
    assert shell.text([sys.executable, "-c", "print('hi')"]) == "hi\n"


def test_the_build_side_shows_its_commands_the_same_way(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`inv setup --dry` (host) and `inv base --dry` (build) print `[dry] cmd` on stderr."""
    monkeypatch.setattr(host, "BINFMT_DIR", tmp_path / "binfmt_misc")  # not mounted
    host.ensure_binfmt_mounted(dry=True)
    monkeypatch.setattr(host, "apt_mirror", lambda: "http://127.0.0.1/debian")
    monkeypatch.setattr(build, "BASE_WORKDIR", tmp_path)
    build.debootstrap_all(["linux/arm64"], "trixie", dry=True)
    out = capsys.readouterr()
    assert out.out == "" and "would run" not in out.err
    assert f"[dry] mount -t binfmt_misc binfmt_misc {tmp_path}/binfmt_misc\n" in out.err
    assert "[dry] debootstrap --arch=arm64 --variant=minbase" in out.err
