"""ci/basepkgs.py: the offline base's Debian packages recorded per root (docker/base-packages/)
and `inv base` comparing what it built with the record: a warning, or an error with --strict."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from ci import basepkgs, project
from ci import build as images
from ci.shell import ToolError

STATUS = """Package: libc6
Status: install ok installed
Architecture: amd64
Version: 2.41-10
Description: GNU C Library
 multi-line description: with a colon

Package: python3
Status: install ok installed
Architecture: amd64
Version: 3.13.5-1

Package: gone
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0
"""


def fake_root(tmp_path: Path, status: str, arch: str = "amd64") -> Path:
    """A root file system tarball as `inv base` tars it: ./var/lib/dpkg/status and a file."""
    tar = tmp_path / "work" / f"rootfs-{arch}.tar"
    tar.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tar, "w") as t:
        for name, body in (("./usr/bin/python3", b"#!elf"), (basepkgs.STATUS, status.encode())):
            info = tarfile.TarInfo(name)
            info.size = len(body)
            t.addfile(info, io.BytesIO(body))
    return tar


def test_the_installed_packages_of_a_dpkg_status() -> None:
    assert basepkgs.installed(STATUS) == ["libc6 2.41-10 amd64", "python3 3.13.5-1 amd64"]


def test_a_root_as_recorded_is_equal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tars = {"amd64": fake_root(tmp_path, STATUS)}
    basepkgs.write(tars, "trixie", tmp_path / "rec")
    assert (tmp_path / "rec/trixie/amd64.txt").read_text().splitlines()[1:] == [
        "libc6 2.41-10 amd64",
        "python3 3.13.5-1 amd64",
    ]
    assert basepkgs.compare(tars, "trixie", strict=True, record_dir=tmp_path / "rec")
    assert "ok: amd64 base packages as recorded" in capsys.readouterr().err


MOVED = STATUS.replace("2.41-10", "2.41-12").replace(
    "Package: python3",
    "Package: tzdata\nStatus: install ok installed\nArchitecture: all\n"
    "Version: 2026a-1\n\nPackage: python3",
)
DIFFERENCES = [
    "  ~ libc6:amd64 2.41-10 (recorded) -> 2.41-12 (built)",
    "  + tzdata:all 2026a-1 (built, not recorded)",
]


def test_a_moved_mirror_is_a_warning_naming_each_package(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    basepkgs.write({"amd64": fake_root(tmp_path, STATUS)}, "trixie", tmp_path / "rec")
    tars = {"amd64": fake_root(tmp_path, MOVED)}
    assert not basepkgs.compare(tars, "trixie", strict=False, record_dir=tmp_path / "rec")
    err = capsys.readouterr().err
    assert "\nwarning: the offline base differs from docker/base-packages/" in err
    for line in DIFFERENCES:
        assert line in err.splitlines()
    assert "python3" not in err
    assert "inv base --record" in err and "--strict" in err


def test_strict_makes_a_difference_or_a_missing_record_an_error(tmp_path: Path) -> None:
    basepkgs.write({"amd64": fake_root(tmp_path, STATUS)}, "trixie", tmp_path / "rec")
    tars = {"amd64": fake_root(tmp_path, MOVED)}
    with pytest.raises(ToolError) as e:
        basepkgs.compare(tars, "trixie", strict=True, record_dir=tmp_path / "rec")
    assert all(line in str(e.value).splitlines() for line in DIFFERENCES)
    with pytest.raises(ToolError, match=r"amd64: no record amd64\.txt"):
        basepkgs.compare(tars, "bookworm", strict=True, record_dir=tmp_path / "rec")
    assert basepkgs.differences(["gone 1 amd64"], []) == ["  - gone:amd64 1 (recorded, not built)"]


def test_inv_base_compares_the_roots_it_has_and_strict_stops_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`inv base` with its image present still compares the roots it was built from."""
    monkeypatch.setattr(images, "BASE_WORKDIR", tmp_path)
    monkeypatch.setattr(basepkgs, "RECORD_DIR", tmp_path / "rec")
    for name in ("require_engine", "require_emulation"):
        monkeypatch.setattr(images, name, lambda *a: None)
    monkeypatch.setattr(images, "image_present", lambda ref: True)
    (tmp_path / "trixie").mkdir()
    fake_root(tmp_path, STATUS).rename(tmp_path / "trixie/rootfs-amd64.tar")
    images.build_base(["linux/amd64"], "base:test", "trixie", dry=False, record=True)
    fake_root(tmp_path, MOVED).rename(tmp_path / "trixie/rootfs-amd64.tar")
    images.build_base(["linux/amd64"], "base:test", "trixie", dry=False)
    assert DIFFERENCES[0] in capsys.readouterr().err.splitlines()
    with pytest.raises(ToolError, match="differ"):
        images.build_base(["linux/amd64"], "base:test", "trixie", dry=False, strict=True)


def test_every_built_platform_has_a_record() -> None:
    for platform in project.platforms():
        path = basepkgs.record_path(project.base_suite(), project.arch_name(platform))
        names = {line.split()[0] for line in basepkgs.read(path)}
        assert {"python3", "libc6", "ca-certificates"} <= names, path


def test_publish_on_the_offline_base_checks_its_packages_strictly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ci.release import publish

    calls: list[tuple[list[str], str, bool]] = []

    def base_packages(platforms: list[str], suite: str, *, strict: bool = False) -> bool:
        calls.append((platforms, suite, strict))
        return True

    monkeypatch.setattr(images, "base_packages", base_packages)
    monkeypatch.delenv(publish.BASE_STRICT, raising=False)
    publish.require_recorded_base("python:3.13-slim-trixie", ["linux/amd64"])
    assert calls == []
    publish.require_recorded_base(project.local_base_image(), ["linux/arm64"])
    assert calls == [(["linux/arm64"], project.base_suite(), True)]
    monkeypatch.setenv(publish.BASE_STRICT, "0")
    publish.require_recorded_base(project.local_base_image(), ["linux/arm64"])
    assert calls[1:] == [(["linux/arm64"], project.base_suite(), False)]
