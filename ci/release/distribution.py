"""Reading manifests straight from a registry (the OCI distribution API), for where
``docker buildx`` is missing: the verifier container carries the docker CLI only.

Anonymous pulls, as ``docker pull`` of a public candidate does: a registry that answers
401 with a Bearer challenge is asked for an anonymous token. Plain HTTP for loopback
registries (and ``CLICKVOTE_REGISTRY_INSECURE``), HTTPS otherwise.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request

from ci.release import ReleaseError
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
    headers = {"Accept": ACCEPT}
    for _ in range(2):
        try:
            req = urllib.request.Request(url, headers=headers)
            with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
                return bytes(resp.read())
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            challenge = e.headers.get("WWW-Authenticate", "")
            if e.code == 401 and "Authorization" not in headers and challenge:
                headers["Authorization"] = f"Bearer {_token(challenge, repo)}"
                continue
            raise ReleaseError(f"{registry}: {ref} answered HTTP {e.code}") from e
        except (urllib.error.URLError, OSError) as e:
            raise ReleaseError(f"cannot reach the registry {registry}: {e}") from e
    raise ReleaseError(f"{registry} refused an anonymous pull of {ref}")


def _token(challenge: str, repo: str) -> str:
    params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
    if not challenge.lower().startswith("bearer") or "realm" not in params:
        raise ReleaseError(f"the registry wants credentials ({challenge[:80]})")
    query = {"scope": params.get("scope", f"repository:{repo}:pull")}
    if "service" in params:
        query["service"] = params["service"]
    url = params["realm"] + "?" + urllib.parse.urlencode(query)
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as resp:
            data = json.load(resp)
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise ReleaseError(f"no anonymous pull token from {params['realm']}: {e}") from e
    token = data.get("token") or data.get("access_token")
    if not token:
        raise ReleaseError(f"no anonymous pull token from {params['realm']}")
    return str(token)
