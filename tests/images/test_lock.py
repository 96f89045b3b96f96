"""docker/lock/: the images' Python dependencies locked with hashes (ci/lockfile.py, written by
`inv lock`), answering pyproject.toml, and what the Dockerfile's pip does with them."""

from __future__ import annotations

import hashlib
import importlib.util
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

from ci import lockfile, project
from ci.lockfile import Pin

ROOT = Path(__file__).resolve().parents[2]
MACHINES = ["x86_64", "aarch64", "armv7l"]


def _requirements() -> ModuleType:
    spec = importlib.util.spec_from_file_location("requirements", ROOT / "docker/requirements.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_lock_answers_pyproject() -> None:
    assert lockfile.problems(ROOT / "pyproject.toml") == [], lockfile.RELOCK


def test_every_built_machine_is_locked_with_a_hash_for_each_package() -> None:
    built = {project.table()[p].machine for p in project.platforms()}
    for group in lockfile.GROUPS:
        pins = lockfile.parse((lockfile.LOCK_DIR / f"{group}.txt").read_text())
        assert pins, group
        for pin in pins:
            assert pin.hashes and all(re.fullmatch(r"[0-9a-f]{64}", h) for h in pin.hashes)
    runtime = {p.name: p for p in lockfile.parse((lockfile.LOCK_DIR / "runtime.txt").read_text())}
    assert built <= runtime["starlette"].machines
    assert "riscv64" not in runtime["orjson"].machines  # pyproject's marker, kept


def _edited_pyproject(tmp_path: Path, old: str, new: str) -> Path:
    text = (ROOT / "pyproject.toml").read_text()
    assert old in text
    path = tmp_path / "pyproject.toml"
    path.write_text(text.replace(old, new, 1))
    return path


def test_a_requirement_added_without_relocking_is_named(tmp_path: Path) -> None:
    path = _edited_pyproject(tmp_path, '"redis>=5.0",', '"redis>=5.0",\n    "leftpad>=1.0",')
    found = lockfile.problems(path)
    assert "runtime: pyproject.toml's requirements are not those locked" in found
    assert "runtime: leftpad is not locked for x86_64" in found
    assert "run `inv lock`" in lockfile.RELOCK


def test_a_raised_minimum_or_a_test_requirement_is_named(tmp_path: Path) -> None:
    path = _edited_pyproject(tmp_path, '"starlette>=0.40"', '"starlette>=999"')
    assert any(
        p.startswith("runtime: starlette==") and "starlette>=999" in p
        for p in lockfile.problems(path)
    )
    path = _edited_pyproject(tmp_path, '"pytest>=8",', '"pytest>=8",\n    "leftpad",')
    assert "test: leftpad is not locked for aarch64" in lockfile.problems(path)


def test_a_marker_narrowed_in_pyproject_is_a_change_to_relock(tmp_path: Path) -> None:
    path = _edited_pyproject(
        tmp_path,
        "platform_machine != 'riscv64' and platform_machine != 'armv5tel'",
        "platform_machine != 'riscv64' and platform_machine "
        "!= 'armv7l' and platform_machine != 'armv5tel'",
    )
    assert "runtime: pyproject.toml's requirements are not those locked" in lockfile.problems(path)


PINS = [
    Pin("alpha", "1.0", frozenset(MACHINES), ("a" * 64,)),
    Pin("beta", "2.0", frozenset({"x86_64", "armv7l"}), ("b" * 64, "c" * 64)),
]


def test_the_format_reads_back_and_each_machine_gets_its_lines_with_their_hashes() -> None:
    text = lockfile.render(PINS, MACHINES, ["alpha>=1", "beta; platform_machine != 'aarch64'"], "x")
    assert lockfile.parse(text) == PINS
    assert "beta==2.0 ; platform_machine == 'x86_64' or platform_machine == 'armv7l'" in text
    requirements = _requirements()
    assert requirements.locked_for_machine(text, "aarch64") == [
        f"alpha==1.0 --hash=sha256:{'a' * 64}"
    ]
    assert requirements.locked_for_machine(text, "armv7l")[1] == (
        f"beta==2.0 --hash=sha256:{'b' * 64} --hash=sha256:{'c' * 64}"
    )


def _wheel(directory: Path) -> Path:
    path = directory / "leftpad-1.0-py3-none-any.whl"
    files = {
        "leftpad/__init__.py": "PAD = ' '\n",
        "leftpad-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: leftpad\nVersion: 1.0\n",
        "leftpad-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\n"
        "Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    files["leftpad-1.0.dist-info/RECORD"] = "".join(f"{n},,\n" for n in [*files, "x/RECORD"])
    files["leftpad-1.0.dist-info/RECORD"] = files["leftpad-1.0.dist-info/RECORD"].replace(
        "x/RECORD", "leftpad-1.0.dist-info/RECORD"
    )
    with zipfile.ZipFile(path, "w") as z:
        for name, body in files.items():
            z.writestr(name, body)
    return path


def _install(tmp_path: Path, digest: str, name: str) -> subprocess.CompletedProcess[str]:
    lock = lockfile.render(
        [Pin("leftpad", "1.0", frozenset(MACHINES), (digest,))], MACHINES, ["leftpad"], "runtime"
    )
    req = tmp_path / f"{name}.txt"
    req.write_text("\n".join(_requirements().locked_for_machine(lock, "x86_64")) + "\n")
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--isolated",
        "--no-index",
        "--find-links",
        str(tmp_path / "wheels"),
        "--require-hashes",
        "--no-deps",
        "--target",
        str(tmp_path / name),
        "-r",
        str(req),
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


@pytest.mark.host  # pip: the images carry none
def test_pip_installs_the_locked_file_and_refuses_one_whose_hash_changed(tmp_path: Path) -> None:
    (tmp_path / "wheels").mkdir()
    good = hashlib.sha256(_wheel(tmp_path / "wheels").read_bytes()).hexdigest()
    ok = _install(tmp_path, good, "good")
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "good/leftpad/__init__.py").is_file()
    changed = ("0" if good[0] != "0" else "1") + good[1:]
    refused = _install(tmp_path, changed, "changed")
    assert refused.returncode != 0
    assert "DO NOT MATCH THE HASHES" in refused.stderr
    assert not (tmp_path / "changed/leftpad").exists()


def _stage_commands(dockerfile: str) -> dict[str, list[str]]:
    """Each stage's shell commands (a RUN's lines joined, split at `&&`)."""
    stages: dict[str, list[str]] = {}
    stage = ""
    for line in dockerfile.replace("\\\n", " ").splitlines():
        if m := re.match(r"FROM .* AS (\S+)", line):
            stage = m[1]
        elif line.startswith("RUN "):
            stages.setdefault(stage, []).extend(c.strip() for c in line[4:].split("&&"))
    return stages


def test_every_pip_install_of_the_images_takes_the_lock_and_its_hashes_only() -> None:
    """What the images install from an index is the lock's (lint, which exports nothing, aside);
    the ClickVote wheel is built without fetching a build backend."""
    stages = _stage_commands((ROOT / "docker/Dockerfile").read_text())
    installs = [
        (stage, c)
        for stage, commands in stages.items()
        if stage != "lint"
        for c in commands
        if re.search(r"\bpip (install|wheel|download)\b", c)
    ]
    assert len(installs) >= 5
    for stage, command in installs:
        if command.startswith("pip install") and "/wheels/*.whl" in command:
            continue  # the wheel built in the step before, from the sources
        if command.startswith("pip wheel"):
            assert "--no-build-isolation" in command, (stage, command)
            continue
        assert "--require-hashes" in command and "--no-deps" in command, (stage, command)
    locked = [c for _, cs in stages.items() for c in cs if "requirements.py lock/" in c]
    assert any("lock/runtime.txt" in c for c in locked)
    assert any("lock/test.txt" in c for c in locked)


def _fake_wheel(directory: Path, name: str, requires: list[str]) -> Path:
    path = directory / f"{name}-1.0-py3-none-any.whl"
    meta = "".join(f"Requires-Dist: {r}\n" for r in requires)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{name}-1.0.dist-info/METADATA", f"Name: {name}\nVersion: 1.0\n{meta}")
    return path


def test_each_machines_dependencies_are_judged_with_its_own_markers(tmp_path: Path) -> None:
    """pip judges dependency markers for the host it runs on; the lock judges them for each
    target (machine, the bake file's Python), extras included."""
    from ci import lock
    from ci.shell import ToolError

    requires = {
        "app": [
            "arm-only; platform_machine == 'aarch64'",
            "client-dep; extra == 'client'",
            "old-python; python_version < '3.12'",
        ],
        "arm-only": [],
        "client-dep": [],
        "old-python": [],
    }
    wheels = {n: ("1.0", _fake_wheel(tmp_path, n, r)) for n, r in requires.items()}
    assert lock.closure(["app"], wheels, "x86_64") == {"app"}
    assert lock.closure(["app[client]"], wheels, "aarch64") == {"app", "arm-only", "client-dep"}
    pins = {p.name: p for p in lock.pins_of(["app[client]"], {"x86_64": wheels, "aarch64": wheels})}
    assert pins["arm-only"].machines == {"aarch64"}
    assert pins["app"].machines == {"x86_64", "aarch64"}
    assert pins["app"].hashes == (lock.sha256(wheels["app"][1]),)
    del wheels["client-dep"]
    with pytest.raises(ToolError, match="pip fetched no client-dep"):
        lock.closure(["app[client]"], wheels, "x86_64")
