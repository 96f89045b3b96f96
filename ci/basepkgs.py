"""The offline base's Debian packages, recorded: ``docker/base-packages/<suite>/<arch>.txt``
holds each root file system's installed packages (name, version, architecture), as its dpkg
status says, and ``inv base`` compares what it built with that record.

debootstrap installs what the mirror's index lists on the day, so a root built later may hold
newer packages: by default the differences are a warning (a fresh machine's CI must not fail
because the mirror moved on); ``strict`` (``inv base --strict``, ``inv publish``) makes them
an error. ``inv base --record`` writes the record from the roots built.
"""

from __future__ import annotations

import tarfile
from collections.abc import Sequence
from pathlib import Path

from ci import project, shell

RECORD_DIR = project.ROOT / "docker" / "base-packages"
STATUS = "./var/lib/dpkg/status"


def record_path(suite: str, arch: str, record_dir: Path | None = None) -> Path:
    return (record_dir or RECORD_DIR) / suite / f"{arch}.txt"


def installed(status: str) -> list[str]:
    """``name version architecture`` of every installed package of a dpkg status, sorted."""
    out = []
    for stanza in status.split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in stanza.splitlines() if ": " in line and line[0] != " "
        )
        if fields.get("Status", "").endswith(" installed") and "Package" in fields:
            out.append(f"{fields['Package']} {fields.get('Version', '')} {fields['Architecture']}")
    return sorted(out)


def from_tar(tar: Path) -> list[str]:
    """The installed packages of a root file system tarball (its dpkg status)."""
    with tarfile.open(tar) as t:
        member = t.extractfile(STATUS)
        if member is None:
            raise shell.ToolError(f"no {STATUS} in {tar}")
        return installed(member.read().decode())


def render(packages: Sequence[str], suite: str, arch: str) -> str:
    head = f"# Debian {suite} packages of the offline base for {arch} (inv base --record)\n"
    return head + "".join(p + "\n" for p in packages)


def read(path: Path) -> list[str]:
    return sorted(line for line in path.read_text().splitlines() if line and line[0] != "#")


def differences(recorded: Sequence[str], built: Sequence[str]) -> list[str]:
    """One line per package whose version differs, or that only one side has."""
    old = {tuple(p.split()[0::2]): p.split()[1] for p in recorded}  # (name, arch) -> version
    new = {tuple(p.split()[0::2]): p.split()[1] for p in built}
    out = []
    for key in sorted(old.keys() | new.keys()):
        name = f"{key[0]}:{key[1]}"
        if key not in new:
            out.append(f"  - {name} {old[key]} (recorded, not built)")
        elif key not in old:
            out.append(f"  + {name} {new[key]} (built, not recorded)")
        elif old[key] != new[key]:
            out.append(f"  ~ {name} {old[key]} (recorded) -> {new[key]} (built)")
    return out


def write(tars: dict[str, Path], suite: str, record_dir: Path | None = None) -> None:
    """Record each root's packages (``tars``: short arch name -> root tarball)."""
    for arch, tar in tars.items():
        path = record_path(suite, arch, record_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(from_tar(tar), suite, arch))
        shell.echo(f"recorded: {path}")


def compare(
    tars: dict[str, Path], suite: str, strict: bool, record_dir: Path | None = None
) -> bool:
    """Compare each root with its record, print what differs; True when all are equal.
    ``strict``: a difference, a missing record or a missing root is an error."""
    problems = []
    for arch, tar in tars.items():
        path = record_path(suite, arch, record_dir)
        if not tar.is_file():
            problems.append(f"{arch}: no root file system {tar} to compare")
        elif not path.is_file():
            problems.append(f"{arch}: no record {path.name} in {path.parent}")
        elif found := differences(read(path), from_tar(tar)):
            problems.append(
                f"{arch}: {len(found)} packages differ from the record\n" + "\n".join(found)
            )
        else:
            shell.echo(f"ok: {arch} base packages as recorded")
    if not problems:
        return True
    what = "the offline base differs from docker/base-packages/"
    text = "\n".join([f"{what} (the mirror moved on?):", *problems])
    fix = "check the differences, then `inv base --record` to record the new package set"
    if strict:
        raise shell.ToolError(f"{text}\n{fix}")
    shell.echo(f"warning: {text}\n({fix}; `--strict` makes this an error)")
    return False
