"""Reading manifests straight from a registry (the OCI distribution API), for where
``docker buildx`` is missing: the verifier container carries the docker CLI only.

Read as ``docker pull`` reads: anonymously first, a 401 answered with the credentials
``docker login`` stored (Basic, or a pull token asked with them; an anonymous token where
none are stored), see registryauth. Plain HTTP for loopback registries (and
``CLICKVOTE_REGISTRY_INSECURE``), HTTPS otherwise.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from email.message import Message

from ci.release import ReleaseError, registryauth
from ci.release.config import is_loopback

TIMEOUT = 60.0
ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


def split(ref: str) -> tuple[str, str, str]:
    """``REG/REPO:TAG`` or ``REG/REPO@sha256:...`` -> (registry, repository, tag or digest)."""
    registry, _, rest = ref.partition("/")
    if "@" in rest:
        repo, _, reference = rest.partition("@")
    else:
        repo, _, reference = rest.rpartition(":")
    if not registry or not repo or not reference:
        raise ReleaseError(f"{ref!r} is not REGISTRY/REPOSITORY:TAG or @DIGEST")
    return registry, repo, reference


def _scheme(registry: str) -> str:
    insecure = os.environ.get("CLICKVOTE_REGISTRY_INSECURE", "").lower() in ("1", "true", "yes")
    return "http" if insecure or is_loopback(registry) else "https"


def manifest(ref: str) -> bytes | None:
    """The manifest or index ``ref`` names, as stored; None when the registry has none."""
    registry, repo, reference = split(ref)
    url = f"{_scheme(registry)}://{registry}/v2/{repo}/manifests/{reference}"
    found = get(url, registry, repo, {"Accept": ACCEPT})
    return None if found is None else found[0]


def get(
    url: str, registry: str, repo: str, headers: Mapping[str, str], auth: str = ""
) -> tuple[bytes, Message, str] | None:
    """GET an API ``url`` of ``repo`` as ``docker pull`` reads: anonymous first (or with
    ``auth``), a 401 answered once as the registry asks (registryauth). The body, the
    response headers and the ``Authorization`` to send along next time; None for a 404."""
    for attempt in range(2):
        hdrs = {**headers, **({"Authorization": auth} if auth else {})}
        try:
            with urllib.request.urlopen(
                urllib.request.Request(url, headers=hdrs), timeout=TIMEOUT
            ) as resp:
                return bytes(resp.read()), resp.headers, auth
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            challenge = e.headers.get("WWW-Authenticate", "")
            if e.code == 401 and challenge and attempt == 0:
                auth = registryauth.authorization(
                    registry, challenge, f"repository:{repo}:pull", what="pull"
                )
                continue
            if e.code in (401, 403):
                raise registryauth.refused(registry, repo, challenge, "pull", e.code) from e
            raise ReleaseError(f"{registry}: {url} answered HTTP {e.code}") from e
        except (urllib.error.URLError, OSError) as e:
            raise ReleaseError(f"cannot reach the registry {registry}: {e}") from e
    raise registryauth.refused(registry, repo, "", "pull")
