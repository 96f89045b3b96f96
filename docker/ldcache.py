"""Add shared libraries to a (possibly foreign-architecture) root's /etc/ld.so.cache, natively.

The image's system libraries (libpq) are unpacked natively for each target platform. Loading
them needs no cache (they sit in the loader's default directories), but Python's
``ctypes.util.find_library``, which psycopg uses, asks ``ldconfig -p``, which lists only the
cache. The build host's ldconfig refuses other architectures and running the target's under
emulation is what the build avoids, so this writes the cache itself: glibc's "new" format
(glibc-ld.so.cache1.1), the base's entries plus one per library soname found, each with the
flags the base's own libc entry carries (they name the architecture), sorted as ldconfig sorts.

    python3 ldcache.py BASE_CACHE ROOT OUTPUT

BASE_CACHE is the target base's /etc/ld.so.cache; ROOT holds the unpacked libraries (their
absolute paths below ROOT are the paths the cache records).
"""

from __future__ import annotations

import functools
import re
import struct
import sys
from pathlib import Path

MAGIC = b"glibc-ld.so.cache1.1"
HEADER = struct.Struct("<20sIIB3xI12x")  # magic+version, nlibs, len_strings, flags, extension
ENTRY = struct.Struct("<iIIIQ")  # flags, key, value, osversion, hwcap
HWCAP_EXTENSION = 1 << 62  # an entry that refers to a glibc-hwcaps subdirectory
SONAME = re.compile(r"^lib.+\.so\.\d+$")  # libpq.so.5, liblber-2.5.so.0


class CacheError(Exception):
    pass


Entry = tuple[int, bytes, bytes, int, int]  # flags, name, path, osversion, hwcap


def _string(data: bytes, offset: int) -> bytes:
    end = data.index(b"\0", offset)
    return data[offset:end]


def read(data: bytes) -> tuple[int, list[Entry]]:
    """(header flags, entries) of a new-format cache."""
    if len(data) < HEADER.size or not data.startswith(MAGIC):
        raise CacheError("not a glibc-ld.so.cache1.1 file")
    _, nlibs, _, flags, _ = HEADER.unpack_from(data)
    entries = []
    for i in range(nlibs):
        eflags, key, value, osv, hwcap = ENTRY.unpack_from(data, HEADER.size + i * ENTRY.size)
        if hwcap & HWCAP_EXTENSION:
            raise CacheError("the base's cache uses glibc-hwcaps subdirectories: not supported")
        entries.append((eflags, _string(data, key), _string(data, value), osv, hwcap))
    return flags, entries


def libcmp(a: bytes, b: bytes) -> int:
    """glibc's _dl_cache_libcmp: bytewise, but runs of digits compare as numbers."""
    i = j = 0
    while i < len(a):
        if a[i : i + 1].isdigit():
            if j >= len(b) or not b[j : j + 1].isdigit():
                return 1
            m = re.match(rb"\d+", a[i:])
            n = re.match(rb"\d+", b[j:])
            assert m is not None and n is not None
            if int(m.group()) != int(n.group()):
                return int(m.group()) - int(n.group())
            i, j = i + m.end(), j + n.end()
        elif j < len(b) and b[j : j + 1].isdigit():
            return -1
        elif j >= len(b) or a[i] != b[j]:
            return a[i] - (b[j] if j < len(b) else 0)
        else:
            i, j = i + 1, j + 1
    return 0 - (b[j] if j < len(b) else 0)


def ldconfig_order(e1: Entry, e2: Entry) -> int:
    """ldconfig's order: names descending (the loader's binary search expects it), then flags
    and hwcap descending."""
    res = libcmp(e2[1], e1[1])
    if res:
        return res
    return (e2[0] > e1[0]) - (e2[0] < e1[0]) or (e2[4] > e1[4]) - (e2[4] < e1[4])


def write(flags: int, entries: list[Entry]) -> bytes:
    entries = sorted(entries, key=functools.cmp_to_key(ldconfig_order))
    strings = bytearray()
    offsets: dict[bytes, int] = {}
    start = HEADER.size + len(entries) * ENTRY.size

    def offset(s: bytes) -> int:
        if s not in offsets:
            offsets[s] = start + len(strings)
            strings.extend(s + b"\0")
        return offsets[s]

    body = b"".join(
        ENTRY.pack(eflags, offset(name), offset(path), osv, hwcap)
        for eflags, name, path, osv, hwcap in entries
    )
    return HEADER.pack(MAGIC, len(entries), len(strings), flags, 0) + body + bytes(strings)


def libc_flags(entries: list[Entry]) -> int:
    for eflags, name, *_ in entries:
        if name == b"libc.so.6":
            return eflags
    raise CacheError("no libc.so.6 in the base's cache: cannot tell its architecture flags")


def found_libraries(root: Path, dirs: set[bytes]) -> list[tuple[bytes, bytes]]:
    """(soname, absolute path) of each soname-named library under ``root`` in ``dirs``."""
    out = []
    for path in sorted(root.rglob("lib*.so.*")):
        rel = b"/" + str(path.relative_to(root)).encode()
        if SONAME.match(path.name) and rel.rsplit(b"/", 1)[0] in dirs:
            out.append((path.name.encode(), rel))
    return out


def merge(base: bytes, root: Path) -> tuple[bytes, list[bytes]]:
    flags, entries = read(base)
    arch = libc_flags(entries)
    dirs = {path.rsplit(b"/", 1)[0] for _, _, path, _, _ in entries}
    # merged /usr: a library found under /usr/lib/<triplet> is in the base's /lib/<triplet> too
    dirs |= {b"/usr" + d for d in dirs if not d.startswith(b"/usr/")}
    have = {name for _, name, *_ in entries}
    added = [(n, p) for n, p in found_libraries(root, dirs) if n not in have]
    entries += [(arch, name, path, 0, 0) for name, path in added]
    return write(flags, entries), [p for _, p in added]


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__.strip().split("\n\n")[-2], file=sys.stderr)
        return 2
    base, root, output = Path(argv[0]), Path(argv[1]), Path(argv[2])
    try:
        data, added = merge(base.read_bytes(), root)
    except (OSError, CacheError) as exc:
        print(f"ldcache: {exc}", file=sys.stderr)
        return 1
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(data)
    for path in added:
        print(f"ldcache: + {path.decode()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
