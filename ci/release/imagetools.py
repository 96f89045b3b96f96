"""Talking to the registry: ``docker buildx imagetools`` and the tag list API."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from functools import cache
from typing import Any

from ci import shell
from ci.release import ReleaseError, distribution, registryauth
from ci.release.config import ReleaseConfig
from ci.release.oci import Index, parse_index, predicate_types

TIMEOUT = 120.0
MAX_PAGES = 20


def _imagetools(*args: str) -> list[str]:
    return ["docker", "buildx", "imagetools", *args]


@cache
def has_buildx() -> bool:
    return shell.run(["docker", "buildx", "version"], check=False).returncode == 0


def inspect_raw(ref: str) -> bytes:
    if not has_buildx():
        raw = distribution.manifest(ref)
        if raw is None:
            raise ReleaseError(f"{ref} does not exist in the registry")
        return raw
    proc = shell.run(_imagetools("inspect", "--raw", ref), timeout=TIMEOUT, check=False)
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip()
        if "not found" in err.lower():
            raise ReleaseError(f"{ref} does not exist in the registry")
        raise ReleaseError(f"cannot read {ref}: {err}")
    return proc.stdout


def digest(ref: str) -> str:
    """The digest ``ref`` names in its registry now: the sha256 of the manifest (or index)
    bytes the registry serves for it."""
    return "sha256:" + hashlib.sha256(inspect_raw(ref)).hexdigest()


def exists(ref: str) -> bool:
    if not has_buildx():
        return distribution.manifest(ref) is not None
    proc = shell.run(_imagetools("inspect", "--raw", ref), timeout=TIMEOUT, check=False)
    if proc.returncode == 0:
        return True
    err = proc.stderr.decode(errors="replace").lower()
    if "not found" in err:
        return False
    raise ReleaseError(f"cannot read {ref}: {err.strip()}")


def index(ref: str) -> Index:
    return parse_index(inspect_raw(ref), what=ref)


def image_config(ref: str) -> dict[str, Any]:
    """The image config (os, architecture, variant, config...) of one platform manifest."""
    out = shell.text(_imagetools("inspect", ref, "--format", "{{json .Image}}"), timeout=TIMEOUT)
    try:
        config = json.loads(out)
    except ValueError as e:
        raise ReleaseError(f"{ref}: image config is not JSON") from e
    if not isinstance(config, dict):
        raise ReleaseError(f"{ref}: unexpected image config {out[:80]!r}")
    return config


def configs(cfg: ReleaseConfig, idx: Index, *, test: bool = False) -> dict[str, dict[str, Any]]:
    out = {}
    for d in idx.images.values():
        try:
            out[d.digest] = image_config(cfg.image(d.digest, test=test))
        except ReleaseError as e:
            shell.echo(f"warning: {e}")
    return out


def predicates(cfg: ReleaseConfig, idx: Index, *, test: bool = False) -> dict[str, set[str]]:
    """Attestation manifest digest -> the predicate types it carries (SBOM, provenance)."""
    out = {}
    for a in idx.attestations:
        try:
            out[a.digest] = predicate_types(inspect_raw(cfg.image(a.digest, test=test)))
        except ReleaseError as e:
            shell.echo(f"warning: {e}")
    return out


def create(target: str, sources: Sequence[str], *, dry: bool) -> None:
    shell.change(_imagetools("create", "-t", target, *sources), dry=dry, timeout=TIMEOUT)


def list_tags(cfg: ReleaseConfig, *, test: bool = False) -> list[str] | None:
    """All tags of the repository, read as ``docker pull`` reads (distribution.get: with
    docker login's credentials where the registry wants some, an error naming the registry
    when they are missing or refused); None when the registry does not let those credentials
    list them (the caller then asks for each tag it needs)."""
    repo = cfg.test_repository if test else cfg.repository
    scheme = "http" if cfg.plain_http else "https"
    url: str | None = f"{scheme}://{cfg.registry}/v2/{repo}/tags/list?n=1000"
    tags: list[str] = []
    auth = ""
    for _ in range(MAX_PAGES):
        if url is None:
            return tags
        try:
            found = distribution.get(url, cfg.registry, repo, {}, auth)
        except registryauth.Forbidden:
            return None
        if found is None:  # no such repository yet
            return tags
        body, headers, auth = found
        try:
            tags.extend(json.loads(body).get("tags") or [])
        except (ValueError, AttributeError) as e:
            raise ReleaseError(f"{cfg.registry}: the tag list of {repo} is not JSON") from e
        url = _next_page(cfg, scheme, headers.get("Link"))
    return tags


def _next_page(cfg: ReleaseConfig, scheme: str, link: str | None) -> str | None:
    if not link or 'rel="next"' not in link:
        return None
    path = link.split(";")[0].strip().strip("<>")
    return path if "://" in path else f"{scheme}://{cfg.registry}{path}"
