"""One platform's push by digest: the blobs and manifests of the OCI tarball bake wrote,
uploaded through the registry's distribution API and named by their digests only, no tag.

BuildKit's own ``push-by-digest=true`` is not implemented for the docker driver, which
publish builds with (it builds on the engine's local base and SBOM scanner images), nor can
that driver's image exporter rewrite timestamps: so the tarball of the reproducible build is
pushed as it is, byte for byte, and its digests are the ones a rebuild gets.

Credentials are those ``docker login`` stored, sent as the registry asks (registryauth:
Basic, or exchanged for a bearer token). Plain HTTP for ``release.plain_http``.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import IO, Any

from ci.imagediff import Layout
from ci.release import ReleaseError, registryauth
from ci.release.oci import INDEX_TYPES, digest_of

TIMEOUT = 600.0


@dataclass(frozen=True)
class Manifest:
    digest: str
    media_type: str
    raw: bytes


@dataclass(frozen=True)
class Plan:
    """What to upload, in order: every blob, then the manifests, each after those it names."""

    blobs: tuple[tuple[str, int], ...]  # (digest, size)
    manifests: tuple[Manifest, ...]

    @property
    def top(self) -> str:
        return self.manifests[-1].digest


def plan(layout: Layout) -> Plan:
    """The upload plan of a layout whose ``index.json`` names one image or index."""
    top = json.loads(layout.read("index.json")).get("manifests") or []
    if len(top) != 1:
        raise ReleaseError(f"{layout.path} names {len(top)} images, not one")
    blobs: dict[str, int] = {}
    manifests: dict[str, Manifest] = {}
    _visit(layout, top[0], blobs, manifests)
    return Plan(tuple(blobs.items()), tuple(manifests.values()))


def _visit(
    layout: Layout,
    desc: Mapping[str, Any],
    blobs: dict[str, int],
    manifests: dict[str, Manifest],
) -> None:
    digest = str(desc["digest"])
    if digest in manifests:
        return
    with layout.blob(digest) as f:
        raw = f.read()
    if digest_of(raw) != digest:
        raise ReleaseError(f"{layout.path}: blob {digest} does not match its digest")
    doc = json.loads(raw)
    media_type = str(desc.get("mediaType") or doc.get("mediaType", ""))
    if media_type in INDEX_TYPES:
        for child in doc.get("manifests") or []:
            _visit(layout, child, blobs, manifests)
    else:
        for d in [doc["config"], *(doc.get("layers") or [])]:
            blobs[str(d["digest"])] = int(d["size"])
    manifests[digest] = Manifest(digest, media_type, raw)


# --------------------------------------------------------------------------- the API


class Registry:
    """One repository of a registry, spoken to with the credentials ``docker login`` left."""

    def __init__(self, registry: str, repository: str, *, plain_http: bool) -> None:
        self.registry, self.repository = registry, repository
        self.base = f"{'http' if plain_http else 'https'}://{registry}/v2/{repository}"
        self.auth = ""

    def request(
        self,
        method: str,
        url: str,
        data: bytes | IO[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, Message]:
        """One API request; a 401 is answered once with credentials (or a fresh token, when
        the one held has expired) and the request sent again."""
        for attempt in range(2):
            hdrs = {**(headers or {}), **({"Authorization": self.auth} if self.auth else {})}
            req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
            try:
                with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
                    resp.read()
                    return resp.status, resp.headers
            except urllib.error.HTTPError as e:
                challenge = e.headers.get("WWW-Authenticate", "")
                if e.code == 401 and challenge and attempt == 0 and _rewound(data):
                    self.auth = self._authorize(challenge)
                    continue
                if e.code == 401 and self.auth:
                    raise self._refused(challenge) from e
                if e.code == 403:
                    raise self._refused(challenge, status=403) from e
                if method == "HEAD" and e.code == 404:
                    return 404, e.headers
                body = e.read()[:300].decode(errors="replace")
                raise ReleaseError(
                    f"{self.registry}: {method} {url} answered {e.code} {body}"
                ) from e
            except (urllib.error.URLError, OSError) as e:
                raise ReleaseError(f"cannot reach the registry {self.registry}: {e}") from e
        raise self._refused("")

    def _refused(self, challenge: str, status: int = 401) -> ReleaseError:
        return registryauth.refused(
            self.registry, self.repository, challenge, "push to", status=status
        )

    def _authorize(self, challenge: str) -> str:
        scope = f"repository:{self.repository}:pull,push"
        return registryauth.authorization(self.registry, challenge, scope, what="push")

    def has_blob(self, digest: str) -> bool:
        return self.request("HEAD", f"{self.base}/blobs/{digest}")[0] == 200

    def put_blob(self, digest: str, size: int, body: IO[bytes]) -> None:
        _, headers = self.request("POST", f"{self.base}/blobs/uploads/", b"")
        location = urllib.parse.urljoin(self.base, headers.get("Location", ""))
        sep = "&" if "?" in location else "?"
        url = f"{location}{sep}digest={urllib.parse.quote(digest)}"
        kind = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
        self.request("PUT", url, body, kind)

    def put_manifest(self, m: Manifest) -> None:
        """PUT by digest: the registry names it by nothing else (no tag)."""
        _, headers = self.request(
            "PUT", f"{self.base}/manifests/{m.digest}", m.raw, {"Content-Type": m.media_type}
        )
        stored = headers.get("Docker-Content-Digest", m.digest)
        if stored != m.digest:
            raise ReleaseError(f"{self.registry} stored {m.digest} as {stored}")


def _rewound(data: bytes | IO[bytes] | None) -> bool:
    """True when DATA can be sent again (a stream back at its start)."""
    if data is None or isinstance(data, bytes):
        return True
    if not data.seekable():
        return False
    data.seek(0)
    return True


def push(tarball: Path, registry: str, repository: str, *, plain_http: bool) -> str:
    """Push the OCI tarball's image (its index, manifests and blobs) by digest; its digest."""
    layout = Layout(tarball)
    try:
        p = plan(layout)
        api = Registry(registry, repository, plain_http=plain_http)
        for digest, size in p.blobs:
            if not api.has_blob(digest):
                with layout.blob(digest) as body:
                    api.put_blob(digest, size, body)
        for m in p.manifests:
            api.put_manifest(m)
    finally:
        layout.close()
    return p.top
