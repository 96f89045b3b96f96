"""One platform's OCI tarball pushed by digest (ci/release/upload.py) to the real registry
(Debian's ``docker-registry``) on 127.0.0.1, which asks for credentials as a user's registry
does: htpasswd (Basic) or token auth, the credentials where ``docker login`` leaves them;
and read back from a private repository (distribution.manifest, imagetools.list_tags)."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import subprocess
import tarfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from services import stop_process

from ci.imagediff import Layout
from ci.release import ReleaseError, config, distribution, imagetools, registry, upload
from clickvote.client import free_port

from .test_upload import oci_tarball

pytestmark = [pytest.mark.host, pytest.mark.usefixtures("docker_config")]

USER, SECRET, READER = "ci", "s3cret", "reader"
START_TIMEOUT = 20.0
ACCEPT = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json"


@dataclass(frozen=True)
class Running:
    addr: str
    log: Path

    def api(self, path: str, *, user: str = USER, secret: str = SECRET) -> tuple[int, bytes]:
        """GET /v2/PATH with credentials: status and body."""
        basic = base64.b64encode(f"{user}:{secret}".encode()).decode()
        headers = {"Authorization": f"Basic {basic}", "Accept": ACCEPT}
        req = urllib.request.Request(f"http://{self.addr}/v2/{path}", headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def requests(self, method: str, repo: str) -> list[str]:
        """The access log's lines of METHOD requests to the repository."""
        return [
            line
            for line in self.log.read_text(errors="replace").splitlines()
            if f'"{method} /v2/{repo}/' in line
        ]


def _wait(addr: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://{addr}/v2/", timeout=2).close()
            return
        except urllib.error.HTTPError as e:
            if e.headers.get("Docker-Distribution-Api-Version"):
                return
        except (urllib.error.URLError, OSError):
            pass
        if proc.poll() is not None:
            raise AssertionError(f"docker-registry exited: {log.read_text()[-800:]}")
        time.sleep(0.1)
    raise AssertionError(f"docker-registry did not answer at {addr}: {log.read_text()[-800:]}")


@contextmanager
def serving(root: Path, auth: str) -> Iterator[Running]:
    """The registry with the ``auth:`` section AUTH, on a free port, data in ROOT; stopped
    (and its process reaped) when done."""
    addr, log = f"127.0.0.1:{free_port()}", root / "registry.log"
    config = root / "config.yml"
    config.write_text(registry.config_text(addr, root / "data") + auth)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [registry.install(dry=False), "serve", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        _wait(addr, proc, log)
        yield Running(addr, log)
    finally:
        stop_process(proc)


@pytest.fixture(scope="module")
def htpasswd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    root = tmp_path_factory.mktemp("htpasswd-registry")
    import bcrypt  # host only: riscv64 and 386 have no bcrypt wheel for the image

    hashed = bcrypt.hashpw(SECRET.encode(), bcrypt.gensalt(rounds=4)).decode()
    (root / "htpasswd").write_text(f"{USER}:{hashed}\n")
    auth = f"auth:\n  htpasswd:\n    realm: clickvote-test\n    path: {root / 'htpasswd'}\n"
    with serving(root, auth) as running:
        yield running


def login(home: Path, addr: str, user: str = USER, secret: str = SECRET) -> None:
    """What ``docker login ADDR`` leaves in ``$DOCKER_CONFIG/config.json``."""
    auth = base64.b64encode(f"{user}:{secret}".encode()).decode()
    (home / "config.json").write_text(json.dumps({"auths": {addr: {"auth": auth}}}))


def _sha(raw: bytes) -> str:
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def assert_pushed_untagged(
    reg: Running, repo: str, blobs: dict[str, bytes], manifests: list[str]
) -> None:
    """Every manifest there by digest, byte for byte, every blob, and no tag."""
    for digest in manifests:
        status, body = reg.api(f"{repo}/manifests/{digest}")
        assert status == 200 and _sha(body) == digest
    for digest, raw in blobs.items():
        assert reg.api(f"{repo}/blobs/{digest}") == (200, raw)
    status, body = reg.api(f"{repo}/tags/list")
    # distribution 2.8 knows no tag directory for a repository pushed by digest only: 404
    # NAME_UNKNOWN; an empty list would do as well
    assert (status == 404 and b"NAME_UNKNOWN" in body) or json.loads(body).get("tags") in (None, [])


def test_pushed_by_digest_with_docker_login_credentials(
    htpasswd: Running, tmp_path: Path, docker_config: Path
) -> None:
    login(docker_config, htpasswd.addr)
    blobs, manifests = oci_tarball(tmp_path / "app.oci.tar")
    top = upload.push(tmp_path / "app.oci.tar", htpasswd.addr, "basic/app", plain_http=True)
    assert top == manifests[-1]
    assert_pushed_untagged(htpasswd, "basic/app", blobs, manifests)
    assert len(htpasswd.requests("POST", "basic/app")) == len(blobs)

    again = upload.push(tmp_path / "app.oci.tar", htpasswd.addr, "basic/app", plain_http=True)
    assert again == top
    assert len(htpasswd.requests("POST", "basic/app")) == len(blobs)  # no blob sent again
    assert len(htpasswd.requests("HEAD", "basic/app")) >= 2 * len(blobs)
    assert_pushed_untagged(htpasswd, "basic/app", blobs, manifests)


def real_oci_tarball(root: Path) -> Path:
    """What bake writes for one platform: BuildKit's OCI tarball of a tiny image with its
    provenance attestation (a file of this run's own in it, so its blobs are new)."""
    (root / "ctx").mkdir()
    (root / "ctx" / "hello.txt").write_text(secrets.token_hex(16))
    (root / "ctx" / "Dockerfile").write_text("FROM scratch\nCOPY hello.txt /hello.txt\n")
    out = root / "real.oci.tar"
    proc = subprocess.run(
        [
            *("docker", "buildx", "build", "--platform", "linux/amd64", "--provenance=mode=min"),
            *("--output", f"type=oci,dest={out}", str(root / "ctx")),
        ],
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    return out


def test_a_real_buildkit_tarball(htpasswd: Running, tmp_path: Path, docker_config: Path) -> None:
    login(docker_config, htpasswd.addr)
    tarball = real_oci_tarball(tmp_path)
    members = _tar_files(tarball)
    files = {
        "sha256:" + name.rsplit("/", 1)[-1]: raw
        for name, raw in members.items()
        if name.startswith("blobs/sha256/")
    }
    top = json.loads(members["index.json"])["manifests"][0]["digest"]
    pushed = upload.push(tarball, htpasswd.addr, "basic/real", plain_http=True)
    assert pushed == top
    manifests = [d for d, raw in files.items() if raw.startswith(b"{") and _is_manifest(raw)]
    assert top in manifests and len(manifests) >= 3  # index, image, attestation
    blobs = {d: raw for d, raw in files.items() if d not in manifests}
    assert_pushed_untagged(htpasswd, "basic/real", blobs, manifests)


def _tar_files(path: Path) -> dict[str, bytes]:
    out = {}
    with tarfile.open(path) as tar:
        for member in tar.getmembers():
            f = tar.extractfile(member)
            if f is not None:
                out[member.name] = f.read()
    return out


def _is_manifest(raw: bytes) -> bool:
    doc = json.loads(raw)
    return isinstance(doc, dict) and ("manifests" in doc or "layers" in doc)


def test_wrong_credentials_are_named_refused(
    htpasswd: Running, tmp_path: Path, docker_config: Path
) -> None:
    login(docker_config, htpasswd.addr, secret="not-it")
    oci_tarball(tmp_path / "app.oci.tar")
    with pytest.raises(ReleaseError, match=f"{htpasswd.addr} refused the credentials") as e:
        upload.push(tmp_path / "app.oci.tar", htpasswd.addr, "basic/wrong", plain_http=True)
    assert "not-it" not in str(e.value)
    assert htpasswd.requests("POST", "basic/wrong") == []
    assert htpasswd.api("_catalog")[1].find(b"basic/wrong") == -1


def test_no_credentials_asks_for_docker_login(htpasswd: Running, tmp_path: Path) -> None:
    oci_tarball(tmp_path / "app.oci.tar")
    want = f"{htpasswd.addr} wants credentials for a push: docker login {htpasswd.addr} first"
    with pytest.raises(ReleaseError, match=want):
        upload.push(tmp_path / "app.oci.tar", htpasswd.addr, "basic/anon", plain_http=True)
    assert htpasswd.requests("POST", "basic/anon") == []


def test_an_anonymous_read_names_the_registry_that_wants_credentials(htpasswd: Running) -> None:
    """distribution.manifest without docker login, where the registry wants it."""
    ref = f"{htpasswd.addr}/basic/app@sha256:{'0' * 64}"
    want = f"{htpasswd.addr} wants credentials for a pull: docker login {htpasswd.addr} first"
    with pytest.raises(ReleaseError, match=want):
        distribution.manifest(ref)


# --------------------------------------------------------------------------- token auth


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass(frozen=True)
class Signer:
    """An RSA key and its self-signed certificate, made and used with ``openssl``."""

    key: Path
    cert: Path

    @classmethod
    def make(cls, root: Path) -> Signer:
        key, cert = root / "token.key", root / "token.pem"
        subprocess.run(
            [
                *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
                *("-subj", "/CN=clickvote-test-token", "-keyout", str(key), "-out", str(cert)),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        return cls(key, cert)

    def jwt(self, claims: dict[str, object]) -> str:
        der = "".join(self.cert.read_text().splitlines()[1:-1])  # the PEM body: base64 DER
        header = {"alg": "RS256", "typ": "JWT", "x5c": [der]}
        signed = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", str(self.key)],
            input=signed.encode(),
            check=True,
            capture_output=True,
            timeout=30,
        ).stdout
        return f"{signed}.{_b64url(signature)}"


ISSUER, SERVICE = "clickvote-test-issuer", "clickvote-test-registry"


class TokenServer(ThreadingHTTPServer):
    """The registry's token realm, as a public registry's: an anonymous caller gets pull
    access, USER with the right secret pull and push, READER pull only, a wrong secret a
    401; repositories under ``private/`` are USER's alone (a token without access to them
    for anyone else, as for a private repository)."""

    def __init__(self, signer: Signer) -> None:
        super().__init__(("127.0.0.1", 0), TokenHandler)
        self.signer = signer
        self.issued: list[tuple[str, tuple[str, ...]]] = []  # (subject, actions)

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/token"


class TokenHandler(BaseHTTPRequestHandler):
    server: TokenServer

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        query = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        users = {"": ("", {"pull"})}
        for user, secret, actions in ((USER, SECRET, {"pull", "push"}), (READER, SECRET, {"pull"})):
            basic = "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()
            users[basic] = (user, actions)
        sent = self.headers.get("Authorization", "")
        if sent not in users:
            self._answer(401, {"errors": [{"code": "UNAUTHORIZED"}]})
            return
        subject, allowed = users[sent]
        access = []
        for scope in query.get("scope", []):
            kind, name, actions = scope.split(":")
            private = name.startswith("private/") and subject != USER
            granted = [] if private else sorted(set(actions.split(",")) & allowed)
            access.append({"type": kind, "name": name, "actions": granted})
            self.server.issued.append((subject, tuple(granted)))
        now = int(time.time())
        claims = {"iss": ISSUER, "sub": subject, "aud": query.get("service", [""])[0]}
        claims |= {"iat": now, "nbf": now - 5, "exp": now + 300, "jti": secrets.token_hex(8)}
        token = self.server.signer.jwt(claims | {"access": access})
        self._answer(200, {"token": token, "expires_in": 300})

    def _answer(self, code: int, doc: dict[str, object]) -> None:
        body = json.dumps(doc).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@dataclass(frozen=True)
class TokenRegistry:
    registry: Running
    tokens: TokenServer
    signer: Signer


@pytest.fixture(scope="module")
def token_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenRegistry]:
    root = tmp_path_factory.mktemp("token-registry")
    signer = Signer.make(root)
    tokens = TokenServer(signer)
    thread = threading.Thread(target=tokens.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    auth = (
        f"auth:\n  token:\n    realm: {tokens.realm}\n    service: {SERVICE}\n"
        f"    issuer: {ISSUER}\n    rootcertbundle: {signer.cert}\n"
    )
    try:
        with serving(root, auth) as running:
            yield TokenRegistry(running, tokens, signer)
    finally:
        tokens.shutdown()
        tokens.server_close()


def test_token_auth_pushed_by_digest_and_read_anonymously(
    token_auth: TokenRegistry, tmp_path: Path, docker_config: Path
) -> None:
    reg = token_auth.registry
    login(docker_config, reg.addr)
    blobs, manifests = oci_tarball(tmp_path / "app.oci.tar")
    top = upload.push(tmp_path / "app.oci.tar", reg.addr, "token/app", plain_http=True)
    assert top == manifests[-1]
    assert (USER, ("pull", "push")) in token_auth.tokens.issued
    assert len(reg.requests("POST", "token/app")) == len(blobs)
    assert upload.push(tmp_path / "app.oci.tar", reg.addr, "token/app", plain_http=True) == top
    assert len(reg.requests("POST", "token/app")) == len(blobs)  # no blob sent again

    (docker_config / "config.json").unlink()
    for digest in manifests:  # an anonymous pull, as a verifying device without login reads
        raw = distribution.manifest(f"{reg.addr}/token/app@{digest}")
        assert raw is not None and _sha(raw) == digest
    assert distribution.manifest(f"{reg.addr}/token/app:latest") is None  # no tag
    read = [line for line in reg.requests("GET", "token/app") if "/tags/" in line]
    assert read == []


def test_token_auth_wrong_credentials(
    token_auth: TokenRegistry, tmp_path: Path, docker_config: Path
) -> None:
    reg = token_auth.registry
    login(docker_config, reg.addr, secret="not-it")
    oci_tarball(tmp_path / "app.oci.tar")
    with pytest.raises(ReleaseError, match=f"{reg.addr} refused the credentials") as e:
        upload.push(tmp_path / "app.oci.tar", reg.addr, "token/wrong", plain_http=True)
    assert "not-it" not in str(e.value)
    assert reg.requests("POST", "token/wrong") == []


def test_token_auth_anonymous_push_asks_for_docker_login(
    token_auth: TokenRegistry, tmp_path: Path
) -> None:
    reg = token_auth.registry
    oci_tarball(tmp_path / "app.oci.tar")
    with pytest.raises(ReleaseError, match=f"{reg.addr} wants credentials to push"):
        upload.push(tmp_path / "app.oci.tar", reg.addr, "token/anon", plain_http=True)
    assert ("", ("pull",)) in token_auth.tokens.issued  # the realm's anonymous token
    assert reg.api("_catalog")[1].find(b"token/anon") == -1


def test_token_auth_a_user_who_may_only_pull(
    token_auth: TokenRegistry, tmp_path: Path, docker_config: Path
) -> None:
    reg = token_auth.registry
    login(docker_config, reg.addr, user=READER)
    oci_tarball(tmp_path / "app.oci.tar")
    with pytest.raises(ReleaseError, match=f"{reg.addr} does not let {READER} push to token/ro"):
        upload.push(tmp_path / "app.oci.tar", reg.addr, "token/ro", plain_http=True)
    assert (READER, ("pull",)) in token_auth.tokens.issued


# --------------------------------------------------------------------------- private reads

TAG = "0.1.0-rc.1"


def pushed_and_tagged(addr: str, repo: str, root: Path) -> list[str]:
    """The test tarball pushed to REPO and its index tagged TAG (with the credentials
    docker login stored); its manifests' digests, the index last."""
    tarball = root / "app.oci.tar"
    oci_tarball(tarball)
    layout = Layout(tarball)
    try:
        manifests = upload.plan(layout).manifests
    finally:
        layout.close()
    index = manifests[-1]
    assert upload.push(tarball, addr, repo, plain_http=True) == index.digest
    api = upload.Registry(addr, repo, plain_http=True)
    api.request("PUT", f"{api.base}/manifests/{TAG}", index.raw, {"Content-Type": index.media_type})
    return [m.digest for m in manifests]


def release_config(addr: str, repo: str) -> config.ReleaseConfig:
    return config.ReleaseConfig(registry=addr, repository=repo, test_repository=f"{repo}-none")


def assert_read_with_credentials(addr: str, repo: str, manifests: list[str]) -> None:
    for digest in manifests:
        raw = distribution.manifest(f"{addr}/{repo}@{digest}")
        assert raw is not None and _sha(raw) == digest
    raw = distribution.manifest(f"{addr}/{repo}:{TAG}")
    assert raw is not None and _sha(raw) == manifests[-1]
    assert distribution.manifest(f"{addr}/{repo}:no-such-tag") is None
    assert imagetools.list_tags(release_config(addr, repo)) == [TAG]
    assert imagetools.list_tags(release_config(addr, repo), test=True) == []  # no repository


def assert_refused(addr: str, repo: str, manifests: list[str], want: str) -> None:
    with pytest.raises(ReleaseError, match=want) as e:
        distribution.manifest(f"{addr}/{repo}@{manifests[-1]}")
    assert "not-it" not in str(e.value)
    with pytest.raises(ReleaseError, match=want) as e:
        imagetools.list_tags(release_config(addr, repo))
    assert "not-it" not in str(e.value)


def test_htpasswd_private_reads_with_docker_login_credentials(
    htpasswd: Running, tmp_path: Path, docker_config: Path
) -> None:
    login(docker_config, htpasswd.addr)
    manifests = pushed_and_tagged(htpasswd.addr, "basic/private", tmp_path)
    assert_read_with_credentials(htpasswd.addr, "basic/private", manifests)

    (docker_config / "config.json").unlink()
    want = f"{htpasswd.addr} wants credentials for a pull: docker login {htpasswd.addr} first"
    assert_refused(htpasswd.addr, "basic/private", manifests, want)

    login(docker_config, htpasswd.addr, secret="not-it")
    want = f"{htpasswd.addr} refused the credentials docker login stored for it \\(user ci\\)"
    assert_refused(htpasswd.addr, "basic/private", manifests, want)


def test_token_auth_private_reads_with_docker_login_credentials(
    token_auth: TokenRegistry, tmp_path: Path, docker_config: Path
) -> None:
    addr, issued = token_auth.registry.addr, token_auth.tokens.issued
    login(docker_config, addr)
    manifests = pushed_and_tagged(addr, "private/app", tmp_path)
    issued.clear()
    assert_read_with_credentials(addr, "private/app", manifests)
    assert set(issued) == {(USER, ("pull",))}  # a pull token, asked as USER

    (docker_config / "config.json").unlink()
    issued.clear()
    want = f"{addr} wants credentials to pull private/app: docker login {addr} first"
    assert_refused(addr, "private/app", manifests, want)
    assert set(issued) == {("", ())}  # asked anonymously first, granted nothing

    login(docker_config, addr, secret="not-it")
    assert_refused(addr, "private/app", manifests, f"{addr} refused the credentials")


def test_token_auth_private_reads_by_a_user_without_access(
    token_auth: TokenRegistry, tmp_path: Path, docker_config: Path
) -> None:
    """Credentials the registry takes but with no access to the repository: manifests are
    refused naming the user, the tag list is None (choose_tag then asks for each tag)."""
    addr = token_auth.registry.addr
    login(docker_config, addr)
    manifests = pushed_and_tagged(addr, "private/other", tmp_path)
    login(docker_config, addr, user=READER)
    with pytest.raises(ReleaseError, match=f"{addr} does not let {READER} pull private/other"):
        distribution.manifest(f"{addr}/private/other@{manifests[-1]}")
    assert imagetools.list_tags(release_config(addr, "private/other")) is None
