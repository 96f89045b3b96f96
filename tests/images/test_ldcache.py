"""docker/ldcache.py writes ld.so.cache files the loader's own ldconfig reads.

Inside each platform's test image the checks run against that platform's cache and its
ldconfig (under emulation for ARM): the format is checked by the real consumer."""

from __future__ import annotations

import functools
import importlib.util
import itertools
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
SYSTEM_CACHE = Path("/etc/ld.so.cache")


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ldcache", ROOT / "docker" / "ldcache.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ldcache = _load()


def listing(cache: Path) -> list[str]:
    """`ldconfig -p` lines for a cache file, without its header and generator lines."""
    out = subprocess.run(
        ["ldconfig", "-p", "-C", str(cache)], capture_output=True, text=True, check=True
    ).stdout
    return [line.strip() for line in out.splitlines() if line.startswith("\t")]


def test_libcmp_compares_digit_runs_as_numbers() -> None:
    assert ldcache.libcmp(b"libfoo.so.10", b"libfoo.so.9") > 0
    assert ldcache.libcmp(b"libfoo.so.9", b"libfoo.so.10") < 0
    assert ldcache.libcmp(b"libfoo.so.1", b"libfoo.so.1") == 0
    assert ldcache.libcmp(b"liba.so", b"libb.so") < 0
    assert ldcache.libcmp(b"libfoo.so", b"libfoo.so.1") < 0
    assert ldcache.libcmp(b"lib2.so", b"liba.so") > 0  # a digit sorts after a letter


def test_garbage_is_refused() -> None:
    with pytest.raises(ldcache.CacheError, match="not a glibc"):
        ldcache.read(b"ld.so-1.7.0\0" + bytes(64))
    flags, entries = 2, [(0x303, b"libz.so.1", b"/lib/libz.so.1", 0, 0)]
    with pytest.raises(ldcache.CacheError, match=r"no libc\.so\.6"):
        ldcache.merge(ldcache.write(flags, entries), Path("/nonexistent"))


def test_round_trip_keeps_the_loaderldconfig_order(tmp_path: Path) -> None:
    flags, entries = ldcache.read(SYSTEM_CACHE.read_bytes())
    assert entries, "empty system cache"
    again = tmp_path / "ld.so.cache"
    again.write_bytes(ldcache.write(flags, entries))
    assert ldcache.read(again.read_bytes()) == (flags, entries)
    assert listing(again) == listing(SYSTEM_CACHE)
    # from any input order: the same entries, in ldconfig's order (ties may swap)
    _, resorted = ldcache.read(ldcache.write(flags, list(reversed(entries))))
    assert sorted(resorted) == sorted(entries)
    key = functools.cmp_to_key(ldcache.ldconfig_order)
    assert all(key(a) <= key(b) for a, b in itertools.pairwise(resorted))


def test_merge_adds_sonames_with_the_platform_flags(tmp_path: Path) -> None:
    _, entries = ldcache.read(SYSTEM_CACHE.read_bytes())
    libc_dir = next(p for _, n, p, _, _ in entries if n == b"libc.so.6").rsplit(b"/", 1)[0]
    libdir = tmp_path / "root" / ("/usr" + libc_dir.decode().removeprefix("/usr")).lstrip("/")
    libdir.mkdir(parents=True)
    (libdir / "libclickvotetest.so.3.1").write_bytes(b"\x7fELF")
    (libdir / "libclickvotetest.so.3").symlink_to("libclickvotetest.so.3.1")
    (libdir / "sub").mkdir()
    (libdir / "sub" / "libnotindexed.so.1").write_bytes(b"\x7fELF")
    data, added = ldcache.merge(SYSTEM_CACHE.read_bytes(), tmp_path / "root")
    path = "/" + str((libdir / "libclickvotetest.so.3").relative_to(tmp_path / "root"))
    assert added == [path.encode()]
    out = tmp_path / "ld.so.cache"
    out.write_bytes(data)
    lines = listing(out)
    libc = next(line for line in lines if line.startswith("libc.so.6 "))
    arch = libc.split("(", 1)[1].split(")", 1)[0]  # e.g. libc6,AArch64
    assert f"libclickvotetest.so.3 ({arch}) => {path}" in lines
    assert len(lines) == len(listing(SYSTEM_CACHE)) + 1
    assert not any("libnotindexed" in line for line in lines)
