"""ci/imagediff.py on synthetic OCI layouts: per-platform digests, the first differing layer
and the paths that differ in it (content, mode, owner, mtime, link, presence)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

from ci import imagediff

EPOCH = 1_796_305_521
INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
AMD64 = {"os": "linux", "architecture": "amd64"}
ARM64 = {"os": "linux", "architecture": "arm64"}


@dataclass
class F:
    """One tar entry of a synthetic layer."""

    name: str
    data: bytes = b""
    mode: int = 0o644
    mtime: int = EPOCH
    uid: int = 0
    link: str = ""
    kind: bytes = tarfile.REGTYPE


def layer(*files: F) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for f in files:
            info = tarfile.TarInfo(f.name)
            info.type, info.mode, info.mtime, info.uid = f.kind, f.mode, f.mtime, f.uid
            info.linkname, info.size = f.link, len(f.data) if f.kind == tarfile.REGTYPE else 0
            tar.addfile(info, io.BytesIO(f.data) if f.kind == tarfile.REGTYPE else None)
    return gzip.compress(raw.getvalue(), mtime=0)


class Builder:
    """Writes an OCI layout (blobs, a nested index with an attestation) into a directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "blobs" / "sha256").mkdir(parents=True)

    def blob(self, data: bytes) -> dict[str, object]:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        (self.root / "blobs" / "sha256" / digest[7:]).write_bytes(data)
        return {"digest": digest, "size": len(data)}

    def image(self, platform: dict[str, str], layers: list[bytes], created: str) -> dict:
        config = {**platform, "created": created, "rootfs": {"type": "layers"}}
        manifest = {
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": self.blob(json.dumps(config).encode()),
            "layers": [self.blob(x) for x in layers],
        }
        return {"mediaType": MANIFEST, **self.blob(json.dumps(manifest).encode())}

    def write(self, images: dict[str, dict]) -> Path:
        attestation = self.image({"os": "unknown", "architecture": "unknown"}, [], "x")
        attestation["annotations"] = {"vnd.docker.reference.type": "attestation-manifest"}
        entries = [{**d, "platform": json.loads(p)} for p, d in images.items()]
        nested = {"schemaVersion": 2, "mediaType": INDEX, "manifests": [*entries, attestation]}
        top = {
            "schemaVersion": 2,
            "manifests": [{"mediaType": INDEX, **self.blob(json.dumps(nested).encode())}],
        }
        (self.root / "index.json").write_text(json.dumps(top))
        return self.root


BASE = layer(F("etc/", kind=tarfile.DIRTYPE, mode=0o755), F("etc/os-release", b"debian"))


def app_layer(**changes: F) -> bytes:
    files = {
        "bin": F("usr/local/bin/clickvote", b"#!/bin/sh\n", mode=0o755),
        "pyc": F("opt/app/x.pyc", b"\x0d\x0d\x00\x00hash"),
        "link": F("opt/app/current", link="x.pyc", kind=tarfile.SYMTYPE),
        "data": F("data/", kind=tarfile.DIRTYPE, mode=0o755, uid=10001),
    }
    files.update(changes)
    return layer(*files.values())


def build(tmp: Path, name: str, app: bytes, created: str = "2026-12-03T13:45:21Z") -> Path:
    b = Builder(tmp / name)
    images = {json.dumps(p): b.image(p, [BASE, app], created) for p in (AMD64, ARM64)}
    return b.write(images)


def as_tarball(layout: Path) -> Path:
    out = layout.with_suffix(".tar")
    with tarfile.open(out, "w") as tar:
        for path in sorted(layout.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(layout)), recursive=False)
    return out


def test_two_equal_builds_are_reproducible(tmp_path: Path) -> None:
    results = imagediff.compare(
        build(tmp_path, "a", app_layer()), build(tmp_path, "b", app_layer())
    )
    assert [r.platform for r in results] == ["linux/amd64", "linux/arm64"]  # no attestation
    assert all(r.equal for r in results)
    assert imagediff.report(results).endswith("reproducible: the image digests are equal")


def test_a_file_with_the_build_time_is_named_in_its_layer(tmp_path: Path) -> None:
    a = build(tmp_path, "a", app_layer(pyc=F("opt/app/x.pyc", b"built 14:01:07")))
    b = build(tmp_path, "b", app_layer(pyc=F("opt/app/x.pyc", b"built 14:05:43")))
    text = imagediff.report(imagediff.compare(as_tarball(a), as_tarball(b)))
    assert "linux/amd64: DIFFERENT" in text and "linux/arm64: DIFFERENT" in text
    assert "first differing layer: 2 of 2" in text
    assert "/opt/app/x.pyc: content sha256:" in text
    assert "/usr/local/bin/clickvote" not in text and "config differs" not in text
    assert text.endswith("NOT reproducible")


def test_mode_owner_mtime_link_and_presence_are_each_named(tmp_path: Path) -> None:
    a = build(tmp_path, "a", app_layer())
    b = build(
        tmp_path,
        "b",
        app_layer(
            bin=F("usr/local/bin/clickvote", b"#!/bin/sh\n", mode=0o775),
            data=F("data/", kind=tarfile.DIRTYPE, mode=0o755, uid=0, mtime=EPOCH + 60),
            link=F("opt/app/current", link="y.pyc", kind=tarfile.SYMTYPE),
            extra=F("var/log/apt/history.log", b"Start-Date: now"),
        ),
    )
    lines = imagediff.compare(a, b)[0].details
    assert "  /usr/local/bin/clickvote: mode 0755 != 0775" in lines
    assert any(
        x.startswith("  /data: owner 10001:0 != 0:0; mtime 2026-12-03T13:45:21Z") for x in lines
    )
    assert "  /opt/app/current: target x.pyc != y.pyc" in lines
    assert "  /var/log/apt/history.log: only in the second build" in lines


def test_config_fields_that_differ_are_named(tmp_path: Path) -> None:
    a = build(tmp_path, "a", app_layer())
    b = build(tmp_path, "b", app_layer(), created="2026-12-03T14:41:09Z")
    lines = imagediff.compare(a, b)[1].details
    assert lines == [
        "config differs:",
        "  created: '2026-12-03T13:45:21Z' != '2026-12-03T14:41:09Z'",
    ]


def test_same_files_in_another_order_is_said_so(tmp_path: Path) -> None:
    files = [F("a", b"1"), F("b", b"2")]
    a = build(tmp_path, "a", layer(*files))
    b = build(tmp_path, "b", layer(*reversed(files)))
    assert imagediff.compare(a, b)[0].details[-1] == (
        "  same paths, contents and metadata: the order of the entries differ"
    )


def test_a_platform_built_once_only(tmp_path: Path) -> None:
    a = build(tmp_path, "a", app_layer())
    b = Builder(tmp_path / "b")
    b.write({json.dumps(AMD64): b.image(AMD64, [BASE, app_layer()], "2026-12-03T13:45:21Z")})
    results = imagediff.compare(a, tmp_path / "b")
    assert results[0].equal and not results[1].equal
    assert results[1].details == ["built by one build only"]


def test_many_differing_paths_are_counted_past_the_limit(tmp_path: Path) -> None:
    n = imagediff.LIMIT + 5
    a = build(tmp_path, "a", layer(*(F(f"f{i}", b"a") for i in range(n))))
    b = build(tmp_path, "b", layer(*(F(f"f{i}", b"b") for i in range(n))))
    details = imagediff.compare(a, b)[0].details
    assert details[-1] == "  ... and 5 more paths"
    assert len([x for x in details if ": content " in x]) == imagediff.LIMIT
