"""The tasks/ package: one namespace built from its modules, one task style, one way to fail."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from invoke.context import Context
from invoke.exceptions import Exit

import tasks
from ci.release import ReleaseError, promote
from tasks import _common, bench, build, release, setup

MODULES = (setup, build, bench, release)


def test_the_namespace_is_the_modules_tasks() -> None:
    listed = [t for m in MODULES for t in m.TASKS]
    assert len({t.name for t in listed}) == len(listed)
    assert set(tasks.ns.tasks.values()) == set(listed)
    assert all(isinstance(t, _common.HelpfulTask) for t in listed)


def test_a_failed_command_in_a_release_task_exits_with_its_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def inspect(*args: object, **kwargs: object) -> None:
        raise subprocess.CalledProcessError(3, ["docker", "buildx", "imagetools", "inspect"])

    monkeypatch.setattr(promote, "inspect", inspect)
    with pytest.raises(Exit) as raised:
        release.manifest(Context(), "0.1.0-rc.1")
    assert raised.value.code == 1
    assert raised.value.message == ("error: `docker buildx imagetools inspect` failed (exit 3)")


def test_a_failed_precondition_exits_with_its_message() -> None:
    with pytest.raises(Exit) as raised, _common.failures():
        raise ReleaseError("no registry at 127.0.0.1:5000")
    assert (raised.value.code, raised.value.message) == (
        1,
        "error: no registry at 127.0.0.1:5000",
    )


def dry_passed_positionally(path: Path) -> list[str]:
    """Calls in ``path`` that hand ``dry`` on other than as ``dry=dry``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            if any(isinstance(a, ast.Name) and a.id == "dry" for a in node.args):
                found.append(f"{path.name}:{node.lineno}")
            found += [
                f"{path.name}:{node.lineno}"
                for k in node.keywords
                if isinstance(k.value, ast.Name) and k.value.id == "dry" and k.arg != "dry"
            ]
    return found


def test_every_task_passes_dry_by_keyword() -> None:
    files = sorted(Path(tasks.__file__).parent.glob("*.py"))
    assert len(files) >= 5
    assert [hit for f in files for hit in dry_passed_positionally(f)] == []


def test_inv_finds_ci_without_pythonpath() -> None:
    """``inv`` run from the checkout, as .ci/run does, with nothing else on sys.path."""
    code = (
        "import sys; from invoke.main import program; sys.argv = ['inv', '--list']; "
        "program.run(exit=False); print('setup' in sys.modules, 'build' in sys.modules)"
    )
    proc = subprocess.run(
        [sys.executable, "-I", "-c", code],
        cwd=Path(tasks.__file__).parents[1],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "  verify " in proc.stdout and proc.stdout.endswith("False False\n")


def test_the_reproducible_check_exits_1_when_the_builds_differ(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from ci import reproducible

    outcomes = iter([True, False])
    monkeypatch.setattr(reproducible, "uncommitted", lambda root: True)
    monkeypatch.setattr(reproducible, "check", lambda run: next(outcomes))
    build.build(Context(), platform="amd64,arm64", reproducible_check=True)
    assert "uncommitted changes are not built" in capsys.readouterr().err
    with pytest.raises(Exit) as raised:
        build.build(Context(), platform="amd64", reproducible_check=True)
    assert raised.value.message == "error: the two builds differ (see above)"
    with pytest.raises(Exit, match="temporary files only"):
        build.build(Context(), load=True, reproducible_check=True)
