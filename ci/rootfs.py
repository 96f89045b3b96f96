"""A debootstrap root file system made reproducible before ``inv base`` tars it: what records
the host or the day of the build removed or fixed, and a tarball whose bytes depend on the
files alone (names sorted, numeric owners, mtimes clamped to one epoch).

The epoch is the date of the suite's Release file debootstrap fetched: the same mirror state
(the same package set) gives the same epoch, whenever and wherever the base is built.
"""

from __future__ import annotations

import email.utils
import re
import subprocess
import tarfile
from pathlib import Path

# Written for the machine that ran debootstrap (or by the day it ran), not for the image;
# Docker provides its own hostname and resolv.conf to a container.
HOST_FILES = [
    "etc/hostname",
    "etc/resolv.conf",
    "var/cache/ldconfig/aux-cache",
    "etc/passwd-",
    "etc/group-",
    "etc/shadow-",
    "etc/gshadow-",
]
EMPTY_FILES = ["etc/machine-id"]  # kept, empty: systemd's "not yet set"


def release_epoch(rootfs: Path) -> int | None:
    """The newest ``Date:`` of the Release files in the root's apt lists (read before they
    are stripped), as seconds since 1970."""
    dates = []
    for path in sorted((rootfs / "var/lib/apt/lists").glob("*Release")):
        m = re.search(r"^Date: (.+)$", path.read_text(errors="replace"), re.MULTILINE)
        if m:
            dates.append(int(email.utils.parsedate_to_datetime(m[1]).timestamp()))
    return max(dates) if dates else None


def normalize(rootfs: Path, epoch: int) -> None:
    """Remove or fix what differs between two debootstraps of the same package set."""
    for rel in HOST_FILES:
        (rootfs / rel).unlink(missing_ok=True)
    for rel in EMPTY_FILES:
        if (rootfs / rel).exists():
            (rootfs / rel).write_text("")
    for old in (rootfs / "var/lib/dpkg").glob("*-old"):
        old.unlink()
    shadow = rootfs / "etc/shadow"
    if shadow.exists():  # the day of the last password change: the epoch's day
        day = str(epoch // 86400)
        lines = [_last_change(line, day) for line in shadow.read_text().splitlines()]
        shadow.write_text("".join(line + "\n" for line in lines))


def _last_change(line: str, day: str) -> str:
    fields = line.split(":")
    if len(fields) > 2 and fields[2]:
        fields[2] = day
    return ":".join(fields)


def tar_command(rootfs: Path, tar: Path, epoch: int) -> list[str]:
    """GNU tar of ``rootfs`` whose bytes depend on its files only."""
    return [
        "tar",
        "--numeric-owner",
        "--sort=name",
        "--format=gnu",
        f"--mtime=@{epoch}",
        "--clamp-mtime",
        "-C",
        str(rootfs),
        "-cf",
        str(tar),
        ".",
    ]


def write_tar(rootfs: Path, tar: Path, epoch: int) -> None:
    subprocess.run(tar_command(rootfs, tar, epoch), check=True)


def newest_mtime(tar: Path) -> int:
    """The newest mtime in a tarball: the epoch of one tarred before epochs were recorded."""
    with tarfile.open(tar) as t:
        return max((int(m.mtime) for m in t), default=0)
