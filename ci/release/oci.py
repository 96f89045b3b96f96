"""Manifest lists (OCI image index / Docker manifest list): parsing and checks. Pure."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ci.release import ReleaseError

INDEX_TYPES = {
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
}
IMAGE_TYPES = {
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
}
REFERENCE_TYPE = "vnd.docker.reference.type"
REFERENCE_DIGEST = "vnd.docker.reference.digest"
PREDICATE_TYPE = "in-toto.io/predicate-type"  # annotation of an attestation manifest's layer
SBOM = "https://spdx.dev/Document"
PROVENANCE = "https://slsa.dev/provenance/"  # v0.2, v1: any version
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def is_digest(value: str) -> bool:
    return bool(_DIGEST.fullmatch(value))


def platform_name(p: Mapping[str, Any] | None) -> str:
    """``{"os": "linux", "architecture": "arm", "variant": "v7"}`` -> ``linux/arm/v7``.

    arm64's optional variant v8 is dropped, as buildx and ``ci/project.py`` do.
    """
    if not p:
        return "unknown/unknown"
    name = f"{p.get('os', 'unknown')}/{p.get('architecture', 'unknown')}"
    variant = p.get("variant")
    if variant and not (p.get("architecture") == "arm64" and variant == "v8"):
        name += f"/{variant}"
    return name


def digest_of(raw: bytes) -> str:
    return "sha256:" + hashlib.sha256(raw).hexdigest()


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: str
    annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_attestation(self) -> bool:
        return self.platform == "unknown/unknown" or REFERENCE_TYPE in self.annotations


@dataclass(frozen=True)
class Index:
    digest: str
    media_type: str
    manifests: tuple[Descriptor, ...]

    @property
    def images(self) -> dict[str, Descriptor]:
        """Platform -> its image manifest (attestations excluded; first entry wins)."""
        out: dict[str, Descriptor] = {}
        for d in self.manifests:
            if not d.is_attestation:
                out.setdefault(d.platform, d)
        return out

    @property
    def attestations(self) -> list[Descriptor]:
        return [d for d in self.manifests if d.is_attestation]

    def platform_of(self, digest: str) -> str | None:
        return next((p for p, d in self.images.items() if d.digest == digest), None)


def _descriptor(entry: Mapping[str, Any]) -> Descriptor:
    return Descriptor(
        media_type=str(entry.get("mediaType", "")),
        digest=str(entry["digest"]),
        size=int(entry.get("size", 0)),
        platform=platform_name(entry.get("platform")),
        annotations=dict(entry.get("annotations") or {}),
    )


def parse_index(raw: bytes, *, what: str = "the image") -> Index:
    """Parse the raw bytes that ``imagetools inspect --raw`` prints; the digest is theirs."""
    try:
        doc = json.loads(raw)
    except ValueError as e:
        raise ReleaseError(f"{what}: the registry answered with something that is not JSON") from e
    media_type = doc.get("mediaType", "")
    if "manifests" not in doc:
        raise ReleaseError(
            f"{what} is a single-platform manifest ({media_type or 'no media type'}), "
            "not a manifest list"
        )
    if media_type and media_type not in INDEX_TYPES:
        raise ReleaseError(f"{what} has media type {media_type}, not a manifest list")
    try:
        manifests = tuple(_descriptor(m) for m in doc["manifests"])
    except (KeyError, TypeError, ValueError) as e:
        raise ReleaseError(f"{what}: malformed manifest list entry ({e})") from e
    return Index(digest=digest_of(raw), media_type=media_type, manifests=manifests)


def predicate_types(raw: bytes) -> set[str]:
    """The in-toto predicate types an attestation manifest carries (empty if unreadable)."""
    try:
        layers = json.loads(raw).get("layers") or []
        return {
            str(x["annotations"][PREDICATE_TYPE])
            for x in layers
            if PREDICATE_TYPE in x.get("annotations", {})
        }
    except (ValueError, AttributeError, TypeError):
        return set()


def config_platform(config: Mapping[str, Any]) -> str:
    """The platform an image config says it is for."""
    return platform_name(
        {k: config.get(k) for k in ("os", "architecture", "variant") if config.get(k)}
    )


@dataclass
class IndexCheck:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_index(
    index: Index,
    expected: Iterable[str],
    configs: Mapping[str, Mapping[str, Any]],
    predicates: Mapping[str, Collection[str]],
) -> IndexCheck:
    """Check that every expected platform is there, once, is what it claims, and carries
    an SBOM and a provenance attestation.

    ``configs`` maps a platform manifest's digest to its image config (``os``,
    ``architecture``, ``variant``); a digest missing from it is reported as unchecked.
    ``predicates`` maps an attestation manifest's digest to its predicate types.
    """
    result = IndexCheck()
    expected = list(expected)
    seen: dict[str, int] = {}
    for d in index.manifests:
        if not d.is_attestation:
            seen[d.platform] = seen.get(d.platform, 0) + 1
    for platform in expected:
        if platform not in seen:
            result.problems.append(f"missing platform {platform}")
    for platform, count in seen.items():
        if count > 1:
            result.problems.append(f"platform {platform} is listed {count} times")
        if platform not in expected:
            result.notes.append(f"extra platform {platform} (not in the project's list)")
    for platform, d in index.images.items():
        result.problems.extend(_check_image(platform, d, configs))
        result.problems.extend(_missing_attestations(index, platform, d, predicates))
    result.notes.extend(_check_attestations(index))
    return result


def _missing_attestations(
    index: Index, platform: str, d: Descriptor, predicates: Mapping[str, Collection[str]]
) -> list[str]:
    kinds = {
        kind
        for a in index.attestations
        if a.annotations.get(REFERENCE_DIGEST) == d.digest
        for kind in predicates.get(a.digest, ())
    }
    wanted = {
        "SBOM": SBOM in kinds,
        "provenance": any(k.startswith(PROVENANCE) for k in kinds),
    }
    return [
        f"{platform} ({d.digest}) has no {what} attestation"
        for what, ok in wanted.items()
        if not ok
    ]


def _check_image(
    platform: str, d: Descriptor, configs: Mapping[str, Mapping[str, Any]]
) -> list[str]:
    if d.media_type and d.media_type not in IMAGE_TYPES:
        return [f"{platform} ({d.digest}) has media type {d.media_type}, not an image manifest"]
    config = configs.get(d.digest)
    if config is None:
        return [f"{platform} ({d.digest}): image config could not be read"]
    actual = config_platform(config)
    if actual != platform:
        return [f"{platform} ({d.digest}) claims {platform} but its config says {actual}"]
    return []


def _check_attestations(index: Index) -> list[str]:
    digests = {d.digest for d in index.images.values()}
    notes = []
    for a in index.attestations:
        ref = a.annotations.get(REFERENCE_DIGEST)
        if ref and ref not in digests:
            notes.append(f"attestation {a.digest} refers to {ref}, which is not in the index")
    return notes


def format_index(index: Index) -> str:
    """Platform table; attestation manifests follow, labelled as such."""
    lines = [f"index {index.digest}"]
    for platform, d in index.images.items():
        lines.append(f"  {platform:<16} {d.digest}")
    for a in index.attestations:
        ref = a.annotations.get(REFERENCE_DIGEST, "?")
        owner = index.platform_of(ref) or ref
        lines.append(f"  {'(attestation)':<16} {a.digest}  for {owner}")
    return "\n".join(lines)
