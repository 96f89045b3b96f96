"""The images' lock files (``docker/lock/<group>.txt``): their format and the check that they
still answer pyproject.toml.

A group is what one install of the Dockerfile takes: ``runtime`` (pyproject's dependencies),
``test`` (the extra ``test``), ``build`` (``[build-system] requires``, the wheel's build).
Each file is a pip requirements file: one ``name==version`` per package, with a
``platform_machine`` marker where it is installed on some of the locked machines only, and a
``--hash`` for every wheel file any machine installs. Its header names the machines locked
and the requirements it was generated from. ``inv lock`` writes them (``ci/lock.py``); the
Dockerfile installs a group's lines for its target machine (``docker/requirements.py``) with
``--require-hashes --no-deps``.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from ci import project

LOCK_DIR = project.ROOT / "docker" / "lock"
GROUPS = ("runtime", "test", "build")
RELOCK = "run `inv lock` (docker/lock/ no longer answers pyproject.toml)"


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    machines: frozenset[str]  # where it is installed
    hashes: tuple[str, ...]  # sha256 hex digests, sorted


def group_specs(pyproject: Path, group: str) -> list[str]:
    """The requirements of ``group`` as pyproject.toml writes them."""
    with pyproject.open("rb") as f:
        data = tomllib.load(f)
    if group == "build":
        return list(data["build-system"]["requires"])
    project_table = data["project"]
    if group == "runtime":
        return list(project_table["dependencies"])
    return list(project_table["optional-dependencies"][group])


def applies(spec: str, machine: str) -> bool:
    """Whether ``spec``'s marker holds on ``machine`` (judged for the target, not this host)."""
    marker = Requirement(spec).marker
    return marker is None or marker.evaluate({"platform_machine": machine})


def machine_marker(machines: Iterable[str], every: Sequence[str]) -> str:
    """The marker naming ``machines``, "" where they are all of ``every``."""
    chosen = [m for m in every if m in set(machines)]
    if len(chosen) == len(every):
        return ""
    return " or ".join(f"platform_machine == '{m}'" for m in chosen)


def render(pins: Iterable[Pin], machines: Sequence[str], specs: Sequence[str], group: str) -> str:
    lines = [
        f"# docker/lock/{group}.txt: written by `inv lock` from pyproject.toml; do not edit.",
        f"# machines: {' '.join(machines)}",
        *(f"# requirement: {Requirement(s)}" for s in specs),
    ]
    for pin in sorted(pins, key=lambda p: p.name):
        marker = machine_marker(pin.machines, machines)
        head = f"{pin.name}=={pin.version}" + (f" ; {marker}" if marker else "")
        lines.append(" \\\n".join([head, *(f"    --hash=sha256:{h}" for h in pin.hashes)]))
    return "\n".join(lines) + "\n"


def header(text: str, key: str) -> list[str]:
    return [m[1].strip() for m in re.finditer(rf"^# {key}: (.*)$", text, re.MULTILINE)]


def parse(text: str) -> list[Pin]:
    machines = header(text, "machines")[0].split()
    pins = []
    for line in text.replace("\\\n", " ").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        req_part, *hashes = line.split("--hash=sha256:")
        req = Requirement(req_part.strip())
        (spec,) = req.specifier
        on = frozenset(m for m in machines if applies(str(req), m))
        pins.append(
            Pin(canonicalize_name(req.name), spec.version, on, tuple(h.strip() for h in hashes))
        )
    return pins


def problems(pyproject: Path, lock_dir: Path = LOCK_DIR) -> list[str]:
    """What in pyproject.toml the lock files no longer answer (empty: they do)."""
    found = []
    needed = {project.table()[p].machine for p in project.platforms()}
    for group in GROUPS:
        path = lock_dir / f"{group}.txt"
        if not path.is_file():
            found.append(f"{path.name}: missing")
            continue
        text = path.read_text()
        specs = group_specs(pyproject, group)
        machines = header(text, "machines")[0].split()
        if sorted(map(str, map(Requirement, specs))) != sorted(header(text, "requirement")):
            found.append(f"{group}: pyproject.toml's requirements are not those locked")
        if missing := sorted(needed - set(machines)):
            found.append(f"{group}: no lock for {', '.join(missing)}")
        pins = {p.name: p for p in parse(text)}
        found += [f"{group}: {s}" for s in unanswered(specs, pins, machines)]
    return found


def unanswered(specs: Sequence[str], pins: dict[str, Pin], machines: Sequence[str]) -> list[str]:
    out = []
    for spec in specs:
        req = Requirement(spec)
        for machine in machines:
            if not applies(spec, machine):
                continue
            pin = pins.get(canonicalize_name(req.name))
            if pin is None or machine not in pin.machines:
                out.append(f"{req.name} is not locked for {machine}")
            elif not req.specifier.contains(pin.version, prereleases=True):
                out.append(f"{req.name}=={pin.version} (locked) does not satisfy {spec!r}")
    return out
