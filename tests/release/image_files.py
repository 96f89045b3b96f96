"""Read an image's files and its SBOM straight from a (loopback, plain HTTP) registry."""

from __future__ import annotations

import io
import json
import posixpath
import tarfile
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from ci.release.oci import PREDICATE_TYPE, REFERENCE_DIGEST, SBOM, Index

MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


def _get(url: str, accept: str = "*/*") -> bytes:
    req = urllib.request.Request(url, headers={"Accept": accept})
    with urllib.request.urlopen(req, timeout=120) as resp:
        data: bytes = resp.read()
        return data


@dataclass
class Repo:
    registry: str  # host:port on the loopback
    name: str

    def manifest(self, digest: str) -> dict[str, Any]:
        url = f"http://{self.registry}/v2/{self.name}/manifests/{digest}"
        doc: dict[str, Any] = json.loads(_get(url, MANIFEST_TYPES))
        return doc

    def blob(self, digest: str) -> bytes:
        return _get(f"http://{self.registry}/v2/{self.name}/blobs/{digest}")


@dataclass
class RootFS:
    files: set[str] = field(default_factory=set)  # regular files, no leading slash
    links: dict[str, str] = field(default_factory=dict)  # symlink -> target
    contents: dict[str, bytes] = field(default_factory=dict)  # files kept by keep()

    def replace(self, path: str) -> None:
        """A later layer's entry for ``path`` hides an earlier one."""
        self.files.discard(path)
        self.links.pop(path, None)
        self.contents.pop(path, None)

    def remove(self, path: str) -> None:
        """A whiteout: ``path`` and everything below it are gone."""

        def gone(p: str) -> bool:
            return p == path or p.startswith(path + "/") or not path

        self.files = {p for p in self.files if not gone(p)}
        self.links = {p: t for p, t in self.links.items() if not gone(p)}
        self.contents = {p: d for p, d in self.contents.items() if not gone(p)}

    def real(self, path: str) -> str:
        """``path`` with a symlinked top directory (merged /usr: lib -> usr/lib) resolved."""
        path = path.lstrip("/")
        top, _, rest = path.partition("/")
        if top in self.links:
            target = posixpath.normpath(posixpath.join(posixpath.dirname(top), self.links[top]))
            return posixpath.join(target.lstrip("/"), rest) if rest else target.lstrip("/")
        return path


def rootfs(repo: Repo, digest: str, keep: tuple[str, ...] = ("var/lib/dpkg/info/",)) -> RootFS:
    """The image's file system after all its layers, whiteouts applied."""
    fs = RootFS()
    for layer in repo.manifest(digest)["layers"]:
        with tarfile.open(fileobj=io.BytesIO(repo.blob(layer["digest"])), mode="r:*") as tar:
            for m in tar:
                path = posixpath.normpath("/" + m.name).lstrip("/")
                head, base = posixpath.split(path)
                if base == ".wh..wh..opq":
                    fs.remove(head)
                    continue
                if base.startswith(".wh."):
                    fs.remove(posixpath.join(head, base[4:]))
                    continue
                fs.replace(path)
                if m.issym():
                    fs.links[path] = m.linkname
                elif m.isfile() or m.islnk():
                    fs.files.add(path)
                    if path.startswith(keep) and m.isfile():
                        f = tar.extractfile(m)
                        fs.contents[path] = f.read() if f else b""
    return fs


def sbom_packages(repo: Repo, index: Index, platform: str) -> list[dict[str, Any]]:
    """The SPDX packages of ``platform``'s SBOM attestation."""
    digest = index.images[platform].digest
    packages: list[dict[str, Any]] = []
    for a in index.attestations:
        if a.annotations.get(REFERENCE_DIGEST) != digest:
            continue
        for layer in repo.manifest(a.digest)["layers"]:
            if (layer.get("annotations") or {}).get(PREDICATE_TYPE) == SBOM:
                packages.extend(json.loads(repo.blob(layer["digest"]))["predicate"]["packages"])
    return packages


def deb_names(packages: list[dict[str, Any]]) -> set[str]:
    return {
        p["name"]
        for p in packages
        for ref in p.get("externalRefs", [])
        if str(ref.get("referenceLocator", "")).startswith("pkg:deb/")
    }


def owners(fs: RootFS) -> dict[str, str]:
    """Image path -> the dpkg package whose file list names it."""
    out = {}
    for path, data in fs.contents.items():
        if path.startswith("var/lib/dpkg/info/") and path.endswith(".list"):
            package = posixpath.basename(path)[: -len(".list")].split(":")[0]
            for line in data.decode(errors="replace").splitlines():
                if line.strip() and line != "/.":
                    out[fs.real(line)] = package
    return out
