"""``inv publish --candidate``: build every platform with bake and push a candidate tag.

What is pushed is what a reproducible build gives (``ci/build.py``): bake writes an OCI
tarball with the layers' timestamps rewritten to ``SOURCE_DATE_EPOCH``, ``docker load``
loads it (keeping its digests, attestations included) and ``docker push`` pushes it, so a
rebuild of the candidate's commit (``inv verify``, ``ci/release/rebuild.py``) can get the
digests the registry serves. Uncached (``--no-cache``) as a rebuild is: a cached step
(dependencies installed from the package index) may hold what an older build got.

One platform (``platform=``, one CI job each) is pushed by digest only (``ci/release/
upload.py``: the tarball's blobs and manifests, no tag); ``merge`` makes the candidate's
manifest list of every platform's ``REPO@digest`` with ``docker buildx imagetools create``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TypeVar

from ci import project, shell
from ci.build import REWRITE
from ci.release import ReleaseError, candidate, imagetools, oci, upload
from ci.release.config import ReleaseConfig

BUILDER = "clickvote-release"
BUILD_TIMEOUT = 3600.0
PUSH_ATTEMPTS = 3
APP_TARGET = "app"
TEST_TARGET = "test"
T = TypeVar("T")


def _docker_driver_pushes_attestations() -> bool:
    """The docker driver can push attestations only with the containerd image store."""
    proc = shell.run(["docker", "info", "--format", "{{json .DriverStatus}}"], check=False)
    return b"io.containerd.snapshotter" in proc.stdout


def buildkitd_config(cfg: ReleaseConfig) -> str:
    if not cfg.plain_http:
        return "# no plain-http registries\n"
    return f'[registry."{cfg.registry}"]\n  http = true\n  insecure = true\n'


def ensure_builder(cfg: ReleaseConfig, *, dry: bool) -> str:
    """The buildx builder to use: the configured one, the docker driver, or our own."""
    if cfg.builder not in ("", "auto"):
        return cfg.builder
    if _docker_driver_pushes_attestations():
        return "default"
    if shell.run(["docker", "buildx", "inspect", BUILDER], check=False).returncode == 0:
        return BUILDER
    path = cfg.state_dir / "buildkitd.toml"
    if not dry:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(buildkitd_config(cfg))
    shell.change(
        [
            "docker",
            "buildx",
            "create",
            "--name",
            BUILDER,
            "--driver",
            "docker-container",
            "--driver-opt",
            "network=host",
            "--buildkitd-config",
            str(path),
            "--bootstrap",
        ],
        dry=dry,
    )
    return BUILDER


SBOM_DIR = Path(__file__).resolve().parent / "sbom"


def sbom_generator(cfg: ReleaseConfig, base: str, *, dry: bool) -> str:
    """The SBOM generator image: BuildKit's default (``syft``, needs Docker Hub), a
    configured image, or ``builtin`` (default): ci/release/sbom built locally on ``base``."""
    if cfg.sbom_generator == "syft":
        return ""
    if cfg.sbom_generator != "builtin":
        return cfg.sbom_generator
    digest = hashlib.sha256(
        b"".join(p.read_bytes() for p in sorted(SBOM_DIR.iterdir()) if p.is_file())
    ).hexdigest()
    ref = f"clickvote-sbom-scanner:{digest[:12]}"
    if shell.run(["docker", "image", "inspect", ref], check=False).returncode != 0:
        shell.change(
            [
                "docker",
                "buildx",
                "build",
                "--builder",
                "default",
                "--load",
                "--platform",
                ",".join(project.platforms()),
                "--build-arg",
                f"BASE_IMAGE={base}",
                "-t",
                ref,
                str(SBOM_DIR),
            ],
            dry=dry,
        )
    return ref


def bake_command(
    cfg: ReleaseConfig,
    tag: str,
    builder: str,
    target: str,
    *,
    metadata: Path,
    base: str,
    python: str | None,
    tarball: Path,
    sbom: str = "",
    platform: str = "",
) -> list[str]:
    """Bake one target for every platform, with provenance and SBOM attestations, into the
    OCI ``tarball`` (timestamps rewritten) named for its push (``push_commands``); with
    ``platform``, that one only (pushed by digest, ``upload.push``; ``merge`` tags them)."""
    test = target == TEST_TARGET
    out = ["--set", f"{target}.output=type=oci,dest={tarball},{REWRITE}"]
    push = [*out, "--set", f"{target}.tags={target_ref(cfg, tag, target)}"]
    if platform:
        push += ["--set", f"{target}.platform={platform}"]
    cmd = [
        "docker",
        "buildx",
        "bake",
        "-f",
        str(project.BAKE_FILE),
        "--builder",
        builder,
        *push,
        "--no-cache",  # a cached step may hold what an older index gave: not what a rebuild gets
        "--provenance=mode=max",
        f"--sbom={'generator=' + sbom if sbom else 'true'}",
        "--metadata-file",
        str(metadata),
        "--set",
        f"*.args.BASE_IMAGE={base}",
    ]
    if python:
        cmd += ["--set", f"*.args.PYTHON_VERSION={python}"]
    if test:  # the candidate the test image's `verify` verifies (ci/release/device.py)
        cmd += ["--set", f"{target}.args.CANDIDATE={cfg.image(tag)}"]
        cmd += ["--set", f"{target}.args.CANDIDATE_TESTS={cfg.test_repository}"]
    return [*cmd, target]


def target_ref(cfg: ReleaseConfig, tag: str, target: str) -> str:
    """Where ``target`` of candidate ``tag`` is pushed (its name in the tarball)."""
    return cfg.image(tag, test=target == TEST_TARGET)


def repository(cfg: ReleaseConfig, target: str) -> str:
    return cfg.test_repository if target == TEST_TARGET else cfg.repository


def push_commands(tarball: Path, ref: str) -> list[list[str]]:
    """Load the OCI tarball bake wrote (its digests kept) and push ``ref``, its name in it."""
    return [["docker", "load", "-i", str(tarball)], ["docker", "push", ref]]


def retried(push: Callable[[], T]) -> T:
    """``push()``, retried when it fails (registry 2.8's filesystem store can answer 500 to
    concurrent manifest requests)."""
    for attempt in range(1, PUSH_ATTEMPTS):
        try:
            return push()
        except ReleaseError:
            shell.echo(f"push failed (attempt {attempt}/{PUSH_ATTEMPTS}); retrying")
            time.sleep(2 * attempt)
    return push()


def bake(cmd: list[str], pushes: list[list[str]], *, env: dict[str, str], dry: bool) -> None:
    """Run a bake, then its pushes (retried)."""
    shell.change(cmd, dry=dry, timeout=BUILD_TIMEOUT, env=env)
    load, *rest = pushes
    shell.change(load, dry=dry, timeout=BUILD_TIMEOUT)
    for push in rest:
        retried(partial(shell.change, push, dry=dry, timeout=BUILD_TIMEOUT))


def push_by_digest(cfg: ReleaseConfig, target: str, tarball: Path, *, dry: bool) -> str:
    """Push one platform's tarball by digest, no tag (``upload.push``); its digest."""
    repo = repository(cfg, target)
    shell.echo(f"{'[dry] ' if dry else ''}push {tarball.name} to {cfg.registry}/{repo} by digest")
    if dry:
        return ""
    return retried(lambda: upload.push(tarball, cfg.registry, repo, plain_http=cfg.plain_http))


def build_env() -> tuple[dict[str, str], str, str | None]:
    """Environment, base image and its Python version, resolved as ``inv build`` does."""
    from ci import build as images

    try:
        base, python = images.resolve_base(os.environ.get("CLICKVOTE_BASE", "auto"))
        env = {**os.environ, **images.label_env(), **images.extra_ca_env()}
    except images.BuildError as e:
        raise ReleaseError(str(e)) from e
    return env, base, python


def pin_base(base: str, *, dry: bool) -> str:
    """The base a candidate is built on, named by digest: a registry base named by tag is
    pinned to the digest its registry gives for the tag now, so the candidate's provenance
    (its ``BASE_IMAGE`` build argument) names bytes a rebuild gets again (``rebuild.py``).
    The offline base (``inv base``) is local; its packages are checked against their record
    (``require_recorded_base``)."""
    from ci import build as images

    if dry or base == project.local_base_image() or images.is_pinned(base):
        return base
    try:
        pinned = f"{base}@{imagetools.digest(base)}"
    except ReleaseError as e:
        raise ReleaseError(f"the base image {base} can't be pinned by digest: {e}") from e
    shell.echo(f"base image: {base} pinned as {pinned}")
    return pinned


BASE_STRICT = "CLICKVOTE_BASE_STRICT"


def require_recorded_base(base: str, platforms: list[str]) -> None:
    """On the offline base, its roots' Debian packages must be those docker/base-packages/
    records (``inv base --strict``): a candidate is built on the package set its commit names.
    ``CLICKVOTE_BASE_STRICT=0`` makes a difference a warning (a candidate then names a package
    set its commit does not; the release flow tests use it, as the mirror moves on)."""
    from ci import build as images

    if base == project.local_base_image():
        strict = os.environ.get(BASE_STRICT, "1") != "0"
        images.base_packages(platforms, project.base_suite(), strict=strict)


def choose_tag(cfg: ReleaseConfig, *, by_sha: bool, tag: str = "") -> str:
    if tag:
        return tag
    if by_sha:
        if candidate.git_dirty():
            shell.echo(
                "warning: the work tree has uncommitted changes; the candidate is "
                "built from them, not from the commit its tag names"
            )
        return candidate.sha_tag(cfg, candidate.git_sha())
    version = candidate.app_version()
    tags = imagetools.list_tags(cfg)
    if tags is not None:
        n = candidate.next_rc(cfg.candidate_format, version, tags)
    else:
        n = candidate.probe_rc(cfg, version, lambda t: imagetools.exists(cfg.image(t)))
    return candidate.rc_tag(cfg, version, n)


def publish(
    cfg: ReleaseConfig,
    *,
    by_sha: bool = False,
    tag: str = "",
    with_test: bool = True,
    dry: bool = False,
    platform: str = "",
    digest_dir: Path | None = None,
) -> str:
    """Build and push the candidate ``tag``; with ``platform``, only that platform, by digest
    (no tag), its digests written to ``digest_dir`` for ``merge`` (one job per platform)."""
    tag = choose_tag(cfg, by_sha=by_sha, tag=tag)
    if not dry and imagetools.exists(cfg.image(tag)):
        raise ReleaseError(f"{cfg.image(tag)} already exists: candidates are never overwritten")
    if platform and platform not in project.platforms():
        raise ReleaseError(f"{platform} is not a platform of {project.BAKE_FILE.name}")
    if platform and digest_dir is None:
        raise ReleaseError("a single platform is pushed by digest: give the digest directory")
    builder = ensure_builder(cfg, dry=dry)
    suffix = f"-{project.arch_name(platform)}" if platform else ""
    metadata = cfg.state_dir / f"bake-{cfg.repository.replace('/', '_')}-{tag}{suffix}.json"
    if not dry:
        metadata.parent.mkdir(parents=True, exist_ok=True)
    env, base, python = build_env()
    base = pin_base(base, dry=dry)
    if not dry:
        require_recorded_base(base, [platform] if platform else project.platforms())
    sbom = sbom_generator(cfg, base, dry=dry)
    for target in [APP_TARGET] + ([TEST_TARGET] if with_test else []):
        meta, pushed = metadata.with_suffix(f".{target}.json"), ""
        with tempfile.TemporaryDirectory(prefix="clickvote-publish-") as tmp:
            tarball = Path(tmp) / f"{target}.oci.tar"
            cmd = bake_command(
                cfg,
                tag,
                builder,
                target,
                metadata=meta,
                base=base,
                python=python,
                tarball=tarball,
                sbom=sbom,
                platform=platform,
            )
            if platform:
                shell.change(cmd, dry=dry, timeout=BUILD_TIMEOUT, env=env)
                pushed = push_by_digest(cfg, target, tarball, dry=dry)
            else:
                bake(cmd, push_commands(tarball, target_ref(cfg, tag, target)), env=env, dry=dry)
        if platform and digest_dir is not None and not dry:
            write_digest(digest_dir, target, platform, same(pushed, pushed_digest(meta, target)))
    if not dry and not platform:
        _report(cfg, tag, pushed_digest(metadata.with_suffix(f".{APP_TARGET}.json"), APP_TARGET))
    return tag


def same(pushed: str, reported: str) -> str:
    """The digest pushed, when it is the one bake reported."""
    if pushed != reported:
        raise ReleaseError(f"pushed {pushed}, but bake reported {reported}")
    return pushed


def pushed_digest(metadata: Path, target: str) -> str:
    """The digest bake reports for ``target`` in its metadata file ("" if none)."""
    return str(json.loads(metadata.read_text()).get(target, {}).get("containerimage.digest", ""))


def digest_file(digest_dir: Path, target: str, platform: str) -> Path:
    return digest_dir / f"{target}-{project.arch_name(platform)}.digest"


def write_digest(digest_dir: Path, target: str, platform: str, digest: str) -> None:
    if not oci.is_digest(digest):
        raise ReleaseError(f"bake reported no digest for {target} {platform}: {digest!r}")
    digest_dir.mkdir(parents=True, exist_ok=True)
    digest_file(digest_dir, target, platform).write_text(digest + "\n")
    print(f"{target} {platform}: {digest}")


def merge(cfg: ReleaseConfig, tag: str, digest_dir: Path, *, dry: bool = False) -> None:
    """Make the candidate's manifest list of the per-platform pushes by digest of
    ``publish(platform=...)`` (``docker buildx imagetools create`` from ``REPO@digest``),
    its test image's likewise, and check it."""
    if not dry and imagetools.exists(cfg.image(tag)):
        raise ReleaseError(f"{cfg.image(tag)} already exists: candidates are never overwritten")
    for target in (APP_TARGET, TEST_TARGET):
        test = target == TEST_TARGET
        found = {p: digest_file(digest_dir, target, p) for p in project.platforms()}
        present = {p: f.read_text().strip() for p, f in found.items() if f.exists()}
        if test and not present:
            continue  # published without a test image
        missing = sorted(set(found) - set(present))
        if missing:
            raise ReleaseError(
                f"no {target} digest in {digest_dir} for {', '.join(missing)}: every platform "
                "of docker/docker-bake.hcl is published"
            )
        repo = f"{cfg.registry}/{repository(cfg, target)}"
        sources = []
        for p, d in present.items():
            if not oci.is_digest(d):
                raise ReleaseError(f"{found[p]} holds {d!r}, not a sha256 digest")
            sources.append(f"{repo}@{d}")
        imagetools.create(cfg.image(tag, test=test), sources, dry=dry)
    if not dry:
        _report(cfg, tag, "")


def _report(cfg: ReleaseConfig, tag: str, pushed: str) -> None:
    idx = imagetools.index(cfg.image(tag))
    if pushed and pushed != idx.digest:
        shell.echo(f"warning: bake reported {pushed}, the registry serves {idx.digest}")
    print(f"candidate {cfg.image(tag)}")
    print(oci.format_index(idx))
    check = oci.check_index(
        idx, project.platforms(), imagetools.configs(cfg, idx), imagetools.predicates(cfg, idx)
    )
    if not check.ok:
        raise ReleaseError(
            f"{cfg.image(tag)} was pushed but is not complete: " + "; ".join(check.problems)
        )
