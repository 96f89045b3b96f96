"""ci/rootfs.py: two root file systems with the same files, written in another order at
other times and on other hosts, give the same tarball for `inv base`."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ci import rootfs

EPOCH = 1_796_305_521  # 2026-12-03T13:45:21Z
RELEASE = "Origin: Debian\nSuite: testing\nDate: Thu, 03 Dec 2026 13:45:21 UTC\n"


def make_root(root: Path, order: list[str], when: int, host: str) -> Path:
    day = when // 86400
    files = {
        "usr/bin/python3": "#!elf",
        "usr/lib/python3/x.py": "x = 1\n",
        "etc/passwd": "root:x:0:0:root:/root:/bin/bash\n",
        "etc/shadow": f"root:*:{day}:0:99999:7:::\nnobody:*:{day}:0:99999:7:::\n",
        "etc/hostname": host,
        "etc/resolv.conf": f"nameserver 10.0.{len(host)}.1\n",
        "etc/machine-id": host * 4,
        "etc/passwd-": "old",
        "var/lib/dpkg/status": "Package: libc6\n",
        "var/lib/dpkg/status-old": "before",
        "var/cache/ldconfig/aux-cache": host,
        "var/lib/apt/lists/deb_dists_trixie_InRelease": RELEASE,
    }
    for name in order:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[name])
    for path in [root, *root.rglob("*")]:
        os.utime(path, (when, when))
    return root


def tarball(tmp: Path, name: str, order: list[str], when: int, host: str) -> bytes:
    root = make_root(tmp / name, order, when, host)
    epoch = rootfs.release_epoch(root)
    assert epoch == EPOCH
    rootfs.normalize(root, epoch)
    (root / "var/lib/apt/lists/deb_dists_trixie_InRelease").unlink()  # STRIP, in ci/build.py
    rootfs.write_tar(root, tmp / f"{name}.tar", epoch)
    return (tmp / f"{name}.tar").read_bytes()


def test_same_files_in_another_order_on_another_day_give_the_same_tarball(tmp_path: Path) -> None:
    order = [
        "usr/bin/python3",
        "etc/shadow",
        "etc/passwd",
        "var/lib/dpkg/status",
        "usr/lib/python3/x.py",
        "etc/hostname",
        "etc/resolv.conf",
        "etc/machine-id",
        "etc/passwd-",
        "var/lib/dpkg/status-old",
        "var/cache/ldconfig/aux-cache",
        "var/lib/apt/lists/deb_dists_trixie_InRelease",
    ]
    a = tarball(tmp_path, "a", order, EPOCH + 86400 * 3, "builder-one")
    b = tarball(tmp_path, "b", order[::-1], EPOCH + 86400 * 9, "ci-runner-7")
    assert hashlib.sha256(a).hexdigest() == hashlib.sha256(b).hexdigest()


def test_host_files_go_and_the_last_password_change_is_the_epochs_day(tmp_path: Path) -> None:
    order = ["etc/shadow", "etc/hostname", "etc/resolv.conf", "etc/machine-id", "etc/passwd-"]
    root = make_root(tmp_path / "r", [*order, "var/lib/dpkg/status-old"], EPOCH + 999_999, "h")
    rootfs.normalize(root, EPOCH)
    assert not (root / "etc/hostname").exists() and not (root / "etc/resolv.conf").exists()
    assert not (root / "etc/passwd-").exists() and not (root / "var/lib/dpkg/status-old").exists()
    assert (root / "etc/machine-id").read_text() == ""
    day = EPOCH // 86400
    assert (root / "etc/shadow").read_text() == (
        f"root:*:{day}:0:99999:7:::\nnobody:*:{day}:0:99999:7:::\n"
    )


def test_mtimes_are_clamped_to_the_epoch_and_names_sorted(tmp_path: Path) -> None:
    import tarfile

    root = make_root(tmp_path / "r", ["etc/passwd", "usr/bin/python3"], EPOCH + 50, "h")
    os.utime(root / "etc/passwd", (EPOCH - 50, EPOCH - 50))
    rootfs.write_tar(root, tmp_path / "r.tar", EPOCH)
    with tarfile.open(tmp_path / "r.tar") as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == sorted(m.name for m in members)
    mtimes = {m.name: m.mtime for m in members}
    assert mtimes["./etc/passwd"] == EPOCH - 50  # older: kept
    assert mtimes["./usr/bin/python3"] == EPOCH  # newer: the epoch
    assert {m.uid for m in members} == {os.getuid()}
    assert rootfs.newest_mtime(tmp_path / "r.tar") == EPOCH  # an older tarball's epoch
