"""Release configuration: where images go and how tags are named.

Precedence (lowest first): built-in defaults, the ``release:`` section of
invoke.yaml (or any invoke config file), ``CLICKVOTE_*`` environment variables,
task flags. The defaults address the local registry from ``inv registry``; the
same tasks push to any registry by configuration. No public registry host name
belongs in this repository.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ci import project
from ci.release import ReleaseError

LOCAL_REGISTRY = "127.0.0.1:5000"
NAMESPACE = "clickvote-verify"  # ssh-keygen -Y sign/verify namespace

# invoke.yaml key -> environment variable
ENV = {
    "registry": "CLICKVOTE_REGISTRY",
    "repository": "CLICKVOTE_REPOSITORY",
    "test_repository": "CLICKVOTE_TEST_REPOSITORY",
    "candidate_format": "CLICKVOTE_CANDIDATE_FORMAT",
    "sha_format": "CLICKVOTE_SHA_FORMAT",
    "insecure": "CLICKVOTE_REGISTRY_INSECURE",
    "builder": "CLICKVOTE_BUILDER",
    "sbom_generator": "CLICKVOTE_SBOM_GENERATOR",
    "state_dir": "CLICKVOTE_STATE_DIR",
    "verifications_dir": "CLICKVOTE_VERIFICATIONS_DIR",
    "signing_key": "CLICKVOTE_SIGNING_KEY",
    "quorum": "CLICKVOTE_QUORUM",
    "require_rebuild": "CLICKVOTE_REQUIRE_REBUILD",
}


@dataclass(frozen=True)
class ReleaseConfig:
    registry: str = LOCAL_REGISTRY
    repository: str = field(default_factory=project.image)
    test_repository: str = field(default_factory=project.test_image)
    candidate_format: str = "{version}-rc.{n}"
    sha_format: str = "rc-{sha}"
    insecure: bool | None = None  # None: plain http only for loopback registries
    builder: str = "auto"  # "auto", "default" (the docker driver) or a builder name
    sbom_generator: str = "builtin"  # "builtin" (offline, ci/release/sbom), "syft" or an image
    state_dir: Path = project.ROOT / "var" / "registry"
    verifications_dir: Path = project.ROOT / "verifications"
    signing_key: str = ""
    quorum: int = 3  # distinct signers per platform, unless overridden below
    platform_quorum: Mapping[str, int] = field(default_factory=lambda: {"linux/amd64": 1})
    # Platforms where a report counts only with a rebuild that matched the pulled digest
    # ("all", or platforms: linux/arm64 or arm64); none by default.
    require_rebuild: tuple[str, ...] = ()

    def image(self, tag_or_digest: str, *, test: bool = False) -> str:
        """Full reference: REG/REPO:TAG or REG/REPO@sha256:..."""
        repo = self.test_repository if test else self.repository
        sep = "@" if tag_or_digest.startswith("sha256:") else ":"
        return f"{self.registry}/{repo}{sep}{tag_or_digest}"

    @property
    def is_local(self) -> bool:
        return is_loopback(self.registry)

    @property
    def plain_http(self) -> bool:
        return self.is_local if self.insecure is None else self.insecure

    def quorum_for(self, platform: str) -> int:
        return int(self.platform_quorum.get(platform, self.quorum))

    def rebuild_required(self, platform: str) -> bool:
        return "all" in self.require_rebuild or platform in self.require_rebuild

    def with_overrides(self, **values: Any) -> ReleaseConfig:
        return replace(self, **{k: v for k, v in values.items() if v not in (None, "")})


def is_loopback(registry: str) -> bool:
    if registry.startswith("["):  # [::1]:5000
        host = registry[1:].split("]", 1)[0]
    else:
        host = registry.rsplit(":", 1)[0] if registry.count(":") == 1 else registry
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _coerce(key: str, value: Any) -> Any:
    if key in ("state_dir", "verifications_dir"):
        path = Path(os.path.expanduser(str(value)))
        return path if path.is_absolute() else project.ROOT / path
    if key == "quorum":
        return int(value)
    if key == "insecure":
        return str(value).lower() in ("1", "true", "yes", "on")
    if key == "platform_quorum":
        return {str(k): int(v) for k, v in dict(value).items()}
    if key == "require_rebuild":
        return _platform_list(value)
    return str(value)


def _platform_list(value: Any) -> tuple[str, ...]:
    """``"all"``, ``"arm64,linux/arm/v7"`` or a list of such -> platform names (or "all")."""
    items = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    arches = project.arches()
    out = []
    for item in (i.strip() for i in items if i.strip()):
        if item != "all" and item not in arches and item not in arches.values():
            raise ReleaseError(f"require_rebuild: unknown platform {item!r} (or: all)")
        out.append(arches.get(item, item))
    return tuple(out)


def load(
    invoke_section: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> ReleaseConfig:
    """Defaults, then the invoke ``release:`` section, then environment variables."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    known = set(ReleaseConfig.__dataclass_fields__)
    for key, value in dict(invoke_section or {}).items():
        if key not in known:
            raise ReleaseError(f"unknown key release.{key} in the invoke configuration")
        values[key] = _coerce(key, value)
    for key, var in ENV.items():
        if environ.get(var):
            values[key] = _coerce(key, environ[var])
    cfg = ReleaseConfig(**values)
    if not cfg.registry:
        raise ReleaseError("the registry is empty: set CLICKVOTE_REGISTRY or release.registry")
    return cfg
