"""Two builds of one image, compared: the image digest per platform and, where they differ,
the image config's fields, the first layer that differs and the paths in it (a tar entry's
type, content hash, mode, owner, mtime or link target), as diffoscope would name them.

Pure: reads OCI image layouts, a directory or the tarball BuildKit's ``type=oci,dest=``
output writes. Used by ``inv build --reproducible-check`` (``ci/reproducible.py``).
"""

from __future__ import annotations

import hashlib
import json
import tarfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ci.release.oci import IMAGE_TYPES, INDEX_TYPES, REFERENCE_TYPE, platform_name

LIMIT = 40  # paths or config fields named per difference; the rest are counted


class Layout:
    """An OCI image layout: a directory, or a tarball of one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._tar = None if path.is_dir() else tarfile.open(path)  # noqa: SIM115 (close())

    def open(self, name: str) -> IO[bytes]:
        if self._tar is None:
            return (self.path / name).open("rb")
        member = self._tar.extractfile(name)
        if member is None:
            raise FileNotFoundError(f"{name} in {self.path}")
        return member

    def read(self, name: str) -> bytes:
        with self.open(name) as f:
            return f.read()

    def blob(self, digest: str) -> IO[bytes]:
        return self.open("blobs/" + digest.replace(":", "/", 1))

    def json(self, digest: str) -> Any:
        with self.blob(digest) as f:
            return json.loads(f.read())

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()


def _platform(layout: Layout, desc: Mapping[str, Any]) -> str:
    if desc.get("platform"):
        return platform_name(desc["platform"])
    config = layout.json(layout.json(desc["digest"])["config"]["digest"])
    return platform_name({k: config.get(k) for k in ("os", "architecture", "variant")})


def _walk(layout: Layout, doc: Mapping[str, Any], out: dict[str, str]) -> None:
    for desc in doc.get("manifests") or []:
        kind = desc.get("mediaType", "")
        if kind in INDEX_TYPES:
            _walk(layout, layout.json(desc["digest"]), out)
        elif kind in IMAGE_TYPES and REFERENCE_TYPE not in (desc.get("annotations") or {}):
            platform = _platform(layout, desc)
            if platform != "unknown/unknown":
                out.setdefault(platform, desc["digest"])


def platform_images(layout: Layout) -> dict[str, str]:
    """Platform -> its image manifest's digest (attestation manifests left out)."""
    out: dict[str, str] = {}
    _walk(layout, json.loads(layout.read("index.json")), out)
    return out


@dataclass(frozen=True)
class Entry:
    """What a layer's tar says of one path."""

    kind: str
    mode: int
    owner: str
    mtime: float
    content: str  # sha256 of a file's bytes, a link's target, "" otherwise

    def differences(self, other: Entry) -> list[str]:
        out = []
        if self.kind != other.kind:
            out.append(f"type {self.kind} != {other.kind}")
        if self.content != other.content:
            what = "content" if self.kind == "file" else "target"
            out.append(f"{what} {self.content[:19]} != {other.content[:19]}")
        if self.mode != other.mode:
            out.append(f"mode {self.mode:04o} != {other.mode:04o}")
        if self.owner != other.owner:
            out.append(f"owner {self.owner} != {other.owner}")
        if self.mtime != other.mtime:
            out.append(f"mtime {_when(self.mtime)} != {_when(other.mtime)}")
        return out


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t)) + f" ({t})"


def _kind(m: tarfile.TarInfo) -> str:
    kinds = {tarfile.REGTYPE: "file", tarfile.AREGTYPE: "file", tarfile.DIRTYPE: "dir"}
    kinds |= {tarfile.SYMTYPE: "symlink", tarfile.LNKTYPE: "hardlink"}
    return kinds.get(m.type, "other")


def _content(tar: tarfile.TarFile, m: tarfile.TarInfo) -> str:
    if m.issym() or m.islnk():
        return m.linkname
    if not m.isfile():
        return ""
    h = hashlib.sha256()
    f = tar.extractfile(m)
    if f is not None:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def entries(stream: IO[bytes]) -> Iterator[tuple[str, Entry]]:
    """A layer's (path, entry) pairs in its order; gzip or plain tar."""
    with tarfile.open(fileobj=stream, mode="r|*") as tar:
        for m in tar:
            path = "/" + m.name.removeprefix("./").strip("/")
            owner = f"{m.uid}:{m.gid}"
            entry = Entry(_kind(m), m.mode & 0o7777, owner, m.mtime, _content(tar, m))
            yield path, entry


@dataclass
class LayerDiff:
    lines: list[str] = field(default_factory=list)
    count: int = 0

    def add(self, line: str) -> None:
        self.count += 1
        if len(self.lines) < LIMIT:
            self.lines.append(line)


def layer_diff(a: IO[bytes], b: IO[bytes]) -> list[str]:
    """The paths two layers disagree on (first layer's view, then the second's)."""
    first, second = list(entries(a)), list(entries(b))
    left, right = dict(first), dict(second)
    diff = LayerDiff()
    for path, entry in first:
        if path not in right:
            diff.add(f"{path}: only in the first build")
        elif found := entry.differences(right[path]):
            diff.add(f"{path}: {'; '.join(found)}")
    for path in right.keys() - left.keys():
        diff.add(f"{path}: only in the second build")
    if diff.count == 0:
        same_order = [p for p, _ in first] == [p for p, _ in second]
        why = "tar headers or compression" if same_order else "the order of the entries"
        return [f"same paths, contents and metadata: {why} differ"]
    more = diff.count - len(diff.lines)
    return diff.lines + ([f"... and {more} more paths"] if more else [])


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        return {k: v for key in value for k, v in _flat(value[key], f"{prefix}.{key}").items()}
    if isinstance(value, list):
        return {k: v for i, x in enumerate(value) for k, v in _flat(x, f"{prefix}[{i}]").items()}
    return {prefix.lstrip(".") or ".": value}


def config_diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """The image config's fields (dotted paths) whose values differ, with both values."""
    fa, fb = _flat(a), _flat(b)
    keys = sorted(k for k in fa.keys() | fb.keys() if fa.get(k) != fb.get(k))
    keys = [k for k in keys if not k.startswith("rootfs.diff_ids")]  # the layers say more
    out = [f"{k}: {fa.get(k)!r} != {fb.get(k)!r}" for k in keys[:LIMIT]]
    return out + ([f"... and {len(keys) - LIMIT} more fields"] if len(keys) > LIMIT else [])


@dataclass
class PlatformResult:
    platform: str
    first: str  # image manifest digests ("" where a build has no image for the platform)
    second: str
    details: list[str] = field(default_factory=list)

    @property
    def equal(self) -> bool:
        return bool(self.first) and self.first == self.second

    def format(self) -> str:
        if self.equal:
            return f"{self.platform}: equal {self.first}"
        head = f"{self.platform}: DIFFERENT {self.first or '(none)'} != {self.second or '(none)'}"
        return "\n".join([head, *(f"  {line}" for line in self.details)])


def _layer_lines(a: Layout, b: Layout, la: list[str], lb: list[str]) -> list[str]:
    differing = [i for i in range(max(len(la), len(lb))) if la[i : i + 1] != lb[i : i + 1]]
    if not differing:
        return []
    i = differing[0]
    lines = [f"layers: {len(la)} != {len(lb)}"] if len(la) != len(lb) else []
    if i >= len(la) or i >= len(lb):
        return [*lines, f"layer {i + 1}: only in one build"]
    lines.append(f"first differing layer: {i + 1} of {len(la)} ({la[i]} != {lb[i]})")
    with a.blob(la[i]) as fa, b.blob(lb[i]) as fb:
        lines += [f"  {line}" for line in layer_diff(fa, fb)]
    if len(differing) > 1:
        lines.append("later layers differing too: " + ", ".join(str(j + 1) for j in differing[1:]))
    return lines


def image_diff(a: Layout, b: Layout, first: str, second: str) -> list[str]:
    """Config fields, then the first differing layer's paths, of two image manifests."""
    ma, mb = a.json(first), b.json(second)
    lines = []
    if ma["config"]["digest"] != mb["config"]["digest"]:
        fields = config_diff(a.json(ma["config"]["digest"]), b.json(mb["config"]["digest"]))
        lines += ["config differs:", *(f"  {f}" for f in fields)] if fields else []
    la = [x["digest"] for x in ma.get("layers") or []]
    lb = [x["digest"] for x in mb.get("layers") or []]
    lines += _layer_lines(a, b, la, lb)
    if not lines:
        lines.append("same config and layers: the manifests differ (annotations, media types)")
    return lines


def compare(first: Path, second: Path) -> list[PlatformResult]:
    """Every platform of two builds (OCI layouts), in name order."""
    a, b = Layout(first), Layout(second)
    try:
        ia, ib = platform_images(a), platform_images(b)
        results = []
        for platform in sorted(ia.keys() | ib.keys()):
            r = PlatformResult(platform, ia.get(platform, ""), ib.get(platform, ""))
            if r.first and r.second and not r.equal:
                r.details = image_diff(a, b, r.first, r.second)
            elif not r.equal:
                r.details = ["built by one build only"]
            results.append(r)
        return results
    finally:
        a.close()
        b.close()


def report(results: list[PlatformResult]) -> str:
    lines = [r.format() for r in results] or ["no image in either build"]
    same = bool(results) and all(r.equal for r in results)
    lines.append("reproducible: the image digests are equal" if same else "NOT reproducible")
    return "\n".join(lines)
