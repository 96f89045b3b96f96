"""One platform's OCI tarball pushed by digest (ci/release/upload.py) to a fake registry on
127.0.0.1: every blob and manifest, children first, byte for byte, and never a tag."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from ci.release import ReleaseError, registryauth, upload
from ci.release.oci import is_digest

pytestmark = pytest.mark.usefixtures("docker_config")

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
USER, SECRET, TOKEN = "ci", "s3cret", "tok-123"


def _sha(raw: bytes) -> str:
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def _desc(raw: bytes, media_type: str, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": _sha(raw), "size": len(raw), **extra}


def oci_tarball(path: Path) -> tuple[dict[str, bytes], list[str]]:
    """An OCI layout as bake writes it for one platform: an index of the image and its
    attestation manifest. Its blobs, and its manifests' digests children first."""
    config, layer = b'{"architecture":"amd64","os":"linux"}', b"layer bytes"
    statement, attest_config = b'{"predicateType":"x"}', b"{}"
    image = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": _desc(config, "application/vnd.oci.image.config.v1+json"),
            "layers": [_desc(layer, "application/vnd.oci.image.layer.v1.tar+gzip")],
        }
    ).encode()
    attestation = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": _desc(attest_config, "application/vnd.oci.image.config.v1+json"),
            "layers": [_desc(statement, "application/vnd.in-toto+json")],
        }
    ).encode()
    ref = {"vnd.docker.reference.type": "attestation-manifest"}
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": INDEX,
            "manifests": [
                _desc(image, MANIFEST, platform={"os": "linux", "architecture": "amd64"}),
                _desc(attestation, MANIFEST, annotations=ref | {"x": _sha(image)}),
            ],
        }
    ).encode()
    top = {"schemaVersion": 2, "manifests": [_desc(index, INDEX)]}
    blobs = {_sha(b): b for b in (config, layer, statement, attest_config)}
    manifests = {_sha(b): b for b in (image, attestation, index)}
    with tarfile.open(path, "w") as tar:
        files = {"oci-layout": b'{"imageLayoutVersion":"1.0.0"}'}
        files["index.json"] = json.dumps(top).encode()
        for d, raw in (blobs | manifests).items():
            files["blobs/" + d.replace(":", "/")] = raw
        for name, raw in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return blobs, list(manifests)


class Fake(ThreadingHTTPServer):
    def __init__(self, *, token: bool, token_uses: int = 0) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.token = token
        self.token_uses = token_uses  # requests one token is good for (0: any number)
        self.issued: list[str] = []
        self.uses = 0
        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[str, bytes] = {}  # reference (digest or tag) -> bytes
        self.requests: list[tuple[str, str]] = []
        self.forbid_manifests = False  # a manifest PUT answered 403 (the user may not push)

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"

    def issue(self) -> str:
        self.issued.append(f"{TOKEN}-{len(self.issued)}")
        self.uses = 0
        return self.issued[-1]

    def accepts(self, authorization: str | None) -> bool:
        """The latest token, while it has uses left (an older one has expired)."""
        if not self.token:
            return True
        if not self.issued or authorization != f"Bearer {self.issued[-1]}":
            return False
        self.uses += 1
        return not self.token_uses or self.uses <= self.token_uses


class Handler(BaseHTTPRequestHandler):
    server: Fake

    def log_message(self, *args: Any) -> None:
        pass

    def _answer(self, code: int, body: bytes = b"", **headers: str) -> None:
        self.send_response(code)
        for k, v in headers.items():
            self.send_header(k.replace("_", "-"), v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _authorized(self) -> bool:
        if self.path.startswith("/token?"):
            basic = "Basic " + base64.b64encode(f"{USER}:{SECRET}".encode()).decode()
            if self.headers.get("Authorization") == basic and "push" in self.path:
                self._answer(200, json.dumps({"token": self.server.issue()}).encode())
            else:
                self._answer(401)
            return False
        if self.server.accepts(self.headers.get("Authorization")):
            self.server.requests.append((self.command, self.path))
            return True
        realm = f"http://{self.server.addr}/token"
        self._answer(401, WWW_Authenticate=f'Bearer realm="{realm}",service="fake"')
        return False

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def do_HEAD(self) -> None:
        if self._authorized():
            self._answer(200 if self.path.split("/")[-1] in self.server.blobs else 404)

    def do_GET(self) -> None:
        self._authorized()

    def do_POST(self) -> None:
        if self._authorized():
            self._answer(202, Location="/v2/app/blobs/uploads/u1?_state=abc")

    def do_PUT(self) -> None:
        body, (path, _, query) = self._body(), self.path.partition("?")  # read even if refused
        if not self._authorized():
            return
        if "/blobs/uploads/" in path:
            digest = query.rsplit("digest=", 1)[-1].replace("%3A", ":")
            assert "_state=abc" in query and _sha(body) == digest
            self.server.blobs[digest] = body
            self._answer(201)
        elif self.server.forbid_manifests:
            self._answer(403, b'{"errors":[{"code":"DENIED"}]}')
        else:
            self.server.manifests[path.rsplit("/", 1)[-1]] = body
            self._answer(201, Docker_Content_Digest=_sha(body))


@contextmanager
def serving(*, token: bool, token_uses: int = 0) -> Iterator[Fake]:
    server = Fake(token=token, token_uses=token_uses)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(params=[False, True], ids=["anonymous", "token"])
def fake(request: pytest.FixtureRequest) -> Iterator[Fake]:
    with serving(token=request.param) as server:
        yield server


def _login(home: Path, registry: str) -> None:
    auth = base64.b64encode(f"{USER}:{SECRET}".encode()).decode()
    (home / "config.json").write_text(json.dumps({"auths": {registry: {"auth": auth}}}))


def test_pushed_by_digest_children_first_and_never_tagged(
    fake: Fake, tmp_path: Path, docker_config: Path
) -> None:
    _login(docker_config, fake.addr)
    blobs, manifests = oci_tarball(tmp_path / "app.oci.tar")
    fake.blobs[next(iter(blobs))] = blobs[next(iter(blobs))]  # one there already
    top = upload.push(tmp_path / "app.oci.tar", fake.addr, "app", plain_http=True)
    assert top == manifests[-1] and is_digest(top)
    assert fake.blobs == blobs
    puts = [p.rsplit("/", 1)[-1] for m, p in fake.requests if m == "PUT" and "/manifests/" in p]
    assert puts == manifests  # by digest only, the index last
    assert all(fake.manifests[d] and _sha(fake.manifests[d]) == d for d in manifests)
    uploads = [p for m, p in fake.requests if m == "POST"]
    assert len(uploads) == len(blobs) - 1  # the blob already there is not sent again


def test_a_registry_that_wants_credentials_without_them(tmp_path: Path) -> None:
    oci_tarball(tmp_path / "app.oci.tar")
    with serving(token=True) as fake:
        want = f"{fake.addr} wants credentials for a push: docker login"
        with pytest.raises(ReleaseError, match=want):
            upload.push(tmp_path / "app.oci.tar", fake.addr, "app", plain_http=True)
    assert fake.manifests == {} and fake.blobs == {}


def test_a_push_the_registry_forbids_names_the_user(
    fake: Fake, tmp_path: Path, docker_config: Path
) -> None:
    _login(docker_config, fake.addr)
    oci_tarball(tmp_path / "app.oci.tar")
    fake.forbid_manifests = True
    with pytest.raises(ReleaseError, match=f"^{fake.addr} does not let {USER} push to app$"):
        upload.push(tmp_path / "app.oci.tar", fake.addr, "app", plain_http=True)
    assert fake.manifests == {}


def test_a_token_that_expires_during_the_push_is_renewed(
    tmp_path: Path, docker_config: Path
) -> None:
    """A long push outlives its token: the request the registry refuses for it is sent
    again, body and all, with a fresh one."""
    blobs, manifests = oci_tarball(tmp_path / "app.oci.tar")
    with serving(token=True, token_uses=2) as fake:
        _login(docker_config, fake.addr)
        top = upload.push(tmp_path / "app.oci.tar", fake.addr, "app", plain_http=True)
    assert top == manifests[-1] and fake.blobs == blobs and set(fake.manifests) == set(manifests)
    assert len(fake.issued) > 3  # 4 blobs, 3 manifests: 15 requests; a blob PUT refused


def test_a_tarball_of_two_images_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "two.oci.tar"
    with tarfile.open(path, "w") as tar:
        raw = json.dumps({"manifests": [{"digest": _sha(b"a")}, {"digest": _sha(b"b")}]})
        info = tarfile.TarInfo("index.json")
        info.size = len(raw)
        tar.addfile(info, io.BytesIO(raw.encode()))
    with pytest.raises(ReleaseError, match="names 2 images, not one"):
        upload.push(path, "127.0.0.1:9", "app", plain_http=True)


def test_credentials_docker_login_stored(tmp_path: Path) -> None:
    auth = base64.b64encode(b"me:pw").decode()
    conf = {"auths": {"https://reg.example:5000/v1/": {"auth": auth}}}
    assert registryauth.credentials("reg.example:5000", conf) == ("me", "pw")
    assert registryauth.credentials("other.example", conf) is None
    helper = tmp_path / "docker-credential-fake"
    helper.write_text(
        '#!/bin/sh\nread r\necho "{\\"Username\\":\\"u-$r\\",\\"Secret\\":\\"x\\"}"\n'
    )
    helper.chmod(0o755)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
        got = registryauth.credentials("reg.example", {"credHelpers": {"reg.example": "fake"}})
    assert got == ("u-reg.example", "x")


def test_a_missing_credential_helper_leaves_the_stored_auths(tmp_path: Path) -> None:
    auth = base64.b64encode(b"me:pw").decode()
    conf = {"credsStore": "absent", "auths": {"reg.example": {"auth": auth}}}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATH", str(tmp_path))
        assert registryauth.credentials("reg.example", conf) == ("me", "pw")
        assert registryauth.credentials("other.example", conf) is None
