"""``inv lock``: resolve the images' Python dependencies once for every machine and write
``docker/lock/<group>.txt`` (format: ``ci/lockfile.py``).

Per machine of ``docker/platforms.toml`` (those PLATFORMS builds must resolve; the others are
locked where they do), ``pip download`` fetches the wheels the image build would install:
the same ``--platform`` tags (``docker/platform_facts.py``), ``--python-version`` from the
bake file, ``--only-binary=:all: --implementation cp``; pip reads this host's own
configuration for where to download from. pip judges the dependencies' markers for the host
it runs on, so each group's closure is computed here again from the wheels' metadata with
the target's markers. Where machines resolve a package to different versions, the oldest is
pinned for all and they are resolved again.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from email.parser import Parser
from pathlib import Path
from types import ModuleType

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

from ci import lockfile, project, shell
from ci.lockfile import Pin

PYPROJECT = project.ROOT / "pyproject.toml"
ROUNDS = 3


def _docker_module(name: str) -> ModuleType:
    path = project.ROOT / "docker" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"docker_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pip_options(machine_row: project.Platform) -> list[str]:
    """What the Dockerfile's /pip-target-options holds for this platform."""
    facts = _docker_module("platform_facts")
    minor = int(project.bake_target("app")["args"]["MANYLINUX_GLIBC_MINOR"])
    row = {"machine": machine_row.machine, "wheel_tags": list(machine_row.wheel_tags)}
    tags = facts.wheel_platforms(row, minor)
    opts = ["--only-binary=:all:", "--implementation", "cp"]
    opts += ["--python-version", project.python_version()]
    return opts + [a for t in tags for a in ("--platform", t)]


def marker_env(machine: str) -> dict[str, str]:
    """The target's marker environment: Linux, CPython of the bake file's version."""
    version = project.python_version()
    return {
        "platform_machine": machine,
        "python_version": version,
        "python_full_version": f"{version}.0",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "os_name": "posix",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
    }


Wheels = dict[str, tuple[str, Path]]  # canonical name -> (version, wheel file)


def download(
    specs: Sequence[str], row: project.Platform, pins: Mapping[str, str], work: Path
) -> Wheels:
    """``pip download`` of ``specs`` for ``row``'s machine, ``pins`` as constraints."""
    work.mkdir(parents=True)
    (work / "req.txt").write_text("".join(s + "\n" for s in specs))
    (work / "pins.txt").write_text("".join(f"{n}=={v}\n" for n, v in sorted(pins.items())))
    cmd = [sys.executable, "-m", "pip", "download", "-q", "-d", str(work / "wheels")]
    cmd += [*pip_options(row), "-r", str(work / "req.txt"), "-c", str(work / "pins.txt")]
    shell.echo(f"$ pip download ... for {row.name} ({row.machine}){' with pins' if pins else ''}")
    proc = shell.run(cmd, timeout=900, check=False)
    if proc.returncode != 0:
        lines = proc.stderr.decode(errors="replace").splitlines()
        err = [line for line in lines if line.startswith("ERROR")] or lines[-2:]
        raise shell.ToolError(f"no wheels for {row.name} ({row.machine}): {' '.join(err)}")
    found: Wheels = {}
    for whl in sorted((work / "wheels").glob("*.whl")):
        name, version, _, _ = parse_wheel_filename(whl.name)
        found[canonicalize_name(name)] = (str(version), whl)
    return found


def requires(whl: Path) -> list[str]:
    with zipfile.ZipFile(whl) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        text = z.read(meta).decode()
    return Parser().parsestr(text, headersonly=True).get_all("Requires-Dist") or []


def closure(roots: Sequence[str], wheels: Wheels, machine: str) -> set[str]:
    """The names ``roots`` need on ``machine``, from the downloaded wheels' metadata."""
    env = marker_env(machine)
    todo = [(Requirement(s), "") for s in roots]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        req, extra = todo.pop()
        if req.marker is not None and not req.marker.evaluate({**env, "extra": extra}):
            continue
        name = canonicalize_name(req.name)
        if name not in wheels:
            raise shell.ToolError(f"{req} is needed on {machine} but pip fetched no {name}")
        if (name, frozenset(req.extras)) in seen:
            continue
        seen.add((name, frozenset(req.extras)))
        for dep in requires(wheels[name][1]):
            todo += [(Requirement(dep), e) for e in ("", *sorted(req.extras))]
    return {name for name, _ in seen}


def resolve(
    groups: Mapping[str, Sequence[str]], rows: Sequence[project.Platform], work: Path
) -> dict[str, Wheels]:
    """Per machine, every group's wheels at one version per package on all machines: the
    oldest any PLATFORMS machine resolves to. A machine PLATFORMS leaves out is dropped where
    it does not resolve at those versions."""
    built = {project.table()[p].machine for p in project.platforms()}
    pins: dict[str, str] = {}
    for attempt in range(ROUNDS):
        got = {}
        for row in rows:
            specs = [s for g in groups.values() for s in g if lockfile.applies(s, row.machine)]
            try:
                got[row.machine] = download(specs, row, pins, work / f"{attempt}-{row.machine}")
            except shell.ToolError as e:
                if row.machine in built:
                    raise
                shell.echo(f"left out{' (at the versions PLATFORMS take)' if pins else ''}: {e}")
        rows = [r for r in rows if r.machine in got]
        split = unpinned(got, built)
        if not split:
            return got
        shell.echo(f"machines differ on {', '.join(sorted(split))}: pinning {split}")
        pins.update(split)
    raise shell.ToolError(f"no one version of {', '.join(sorted(pins))} for every machine")


def unpinned(got: Mapping[str, Wheels], built: set[str]) -> dict[str, str]:
    """The packages the machines resolved to different versions, each with the oldest of the
    PLATFORMS machines (of all machines where none of those has it)."""
    versions: dict[str, dict[str, str]] = {}
    for machine, wheels in got.items():
        for name, (version, _) in wheels.items():
            versions.setdefault(name, {})[machine] = version
    split = {}
    for name, on in versions.items():
        if len(set(on.values())) > 1:
            mine = [v for m, v in on.items() if m in built] or list(on.values())
            split[name] = min(mine, key=Version)
    return split


def pins_of(specs: Sequence[str], got: Mapping[str, Wheels]) -> list[Pin]:
    on: dict[str, set[str]] = {}
    files: dict[str, set[Path]] = {}
    version: dict[str, str] = {}
    for machine, wheels in got.items():
        roots = [s for s in specs if lockfile.applies(s, machine)]
        for name in closure(roots, wheels, machine):
            on.setdefault(name, set()).add(machine)
            files.setdefault(name, set()).add(wheels[name][1])
            version[name] = wheels[name][0]
    return [
        Pin(
            name,
            version[name],
            frozenset(on[name]),
            tuple(sorted({sha256(f) for f in files[name]})),
        )
        for name in on
    ]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def machines_to_lock() -> list[project.Platform]:
    """PLATFORMS' rows first, then the table's others."""
    built = project.platforms()
    rows = [project.table()[p] for p in built]
    return rows + [r for name, r in project.table().items() if name not in built]


def write(dry: bool = False, lock_dir: Path = lockfile.LOCK_DIR) -> None:
    """Resolve every group for every machine and write the lock files."""
    groups = {g: lockfile.group_specs(PYPROJECT, g) for g in lockfile.GROUPS}
    rows = machines_to_lock()
    if dry:
        for row in rows:
            shell.show(["pip", "download", *pip_options(row), "-r", "..."], dry=True)
        return
    with tempfile.TemporaryDirectory(prefix="clickvote-lock-") as tmp:
        got = resolve(groups, rows, Path(tmp))
        machines = [r.machine for r in rows if r.machine in got]
        lock_dir.mkdir(parents=True, exist_ok=True)
        for group, specs in groups.items():
            text = lockfile.render(pins_of(specs, got), machines, specs, group)
            (lock_dir / f"{group}.txt").write_text(text)
            shell.echo(f"wrote {(lock_dir / f'{group}.txt').relative_to(project.ROOT)}")
