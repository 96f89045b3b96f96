"""Every task of ``inv --list`` answers ``--help`` and ``-h`` with its help (no task runs)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ci import project


def inv(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=project.ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def task_names() -> list[str]:
    listing = json.loads(inv("--list", "--list-format", "json").stdout)
    return [t["name"] for t in listing["tasks"]]


def test_every_task_prints_its_help() -> None:
    names = task_names()
    assert {"manifest", "manifest-create", "promote", "registry", "verify"} <= set(names)
    for name, flag in [(n, "--help") for n in names] + [("manifest-create", "-h")]:
        proc = inv(name, flag)
        assert proc.returncode == 0, (name, flag, proc.stderr)
        assert proc.stdout.startswith(f"Usage: inv[oke] [--core-opts] {name} "), (name, flag)
        assert "Docstring:" in proc.stdout and not proc.stderr, (name, flag, proc.stderr)


@pytest.mark.parametrize("name", ["manifest", "registry"])
def test_a_positional_argument_still_works(name: str) -> None:
    proc = inv(name, "no such thing!")
    assert proc.returncode == 1 and "Usage:" not in proc.stdout
