"""Release tasks: local registry, candidates, manifest lists, verification, promotion,
release notes, the workflows' matrix (logic in ci/release/).

Configuration: ``release:`` in invoke.yaml and ``CLICKVOTE_*`` environment
variables (see ci/release/config.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from invoke.context import Context
from invoke.tasks import Task

from ci.release import config as release_config
from ci.release import notes as notes_mod
from ci.release import promote as promote_mod
from ci.release import publish as publish_mod
from ci.release import registry as registry_mod
from ci.release import signing
from ci.release import verify as verify_mod
from tasks._common import fail, failures, task


def _cfg(c: Context, **overrides: Any) -> release_config.ReleaseConfig:
    section = c.config.get("release") or {}
    with failures():
        return release_config.load(dict(section)).with_overrides(**overrides)


@task(help={"action": "start, stop or status", "dry": "print what would be done"})
def registry(c: Context, action: str, dry: bool = False) -> None:
    """Run the local image registry (Debian's docker-registry) in the background."""
    cfg = _cfg(c)
    actions = {
        "start": lambda: registry_mod.start(cfg, dry=dry),
        "stop": lambda: registry_mod.stop(cfg, dry=dry),
        "status": lambda: registry_mod.status(cfg),
    }
    if action not in actions:
        raise fail(f"unknown action {action!r}: use start, stop or status")
    with failures():
        print(f"registry: {actions[action]()}")


@task(
    help={
        "candidate": "required: publish a release candidate (releases come from `inv promote`)",
        "sha": "tag rc-<git sha> instead of <version>-rc.<n>",
        "tag": "use this candidate tag instead of computing one",
        "no_test": "do not push the test image (verifiers then run the smoke test only)",
        "tag_file": "write the candidate tag to this file (for CI)",
        "output": "append candidate=<tag> to this file (in GitHub Actions: $GITHUB_OUTPUT)",
        "tag_only": "choose the candidate tag (see --tag-file, --output), build nothing",
        "platform": "one platform only, pushed by digest into --digests (one CI job each)",
        "digests": "directory of the per-platform digests (written by --platform)",
        "merge": "make the candidate --tag of the per-platform digests in --digests",
        "dry": "print the build command instead of running it",
    }
)
def publish(
    c: Context,
    candidate: bool = False,
    sha: bool = False,
    tag: str = "",
    no_test: bool = False,
    tag_file: str = "",
    output: str = "",
    tag_only: bool = False,
    platform: str = "",
    digests: str = "",
    merge: bool = False,
    dry: bool = False,
) -> None:
    """Build every platform with attestations and push a candidate tag (or one platform
    by digest per job, then --merge)."""
    if not candidate:
        raise fail(
            "only candidates are published: pass --candidate; a release is made "
            "from a verified candidate with `inv promote`"
        )
    if (platform or merge) and not (tag and digests):
        raise fail("--platform and --merge need --tag and --digests")
    cfg = _cfg(c)
    with failures():
        if tag_only:
            chosen = publish_mod.choose_tag(cfg, by_sha=sha, tag=tag)
        elif merge:
            publish_mod.merge(cfg, tag, Path(digests), dry=dry)
            chosen = tag
        else:
            chosen = publish_mod.publish(
                cfg,
                by_sha=sha,
                tag=tag,
                with_test=not no_test,
                dry=dry,
                platform=_platform(platform),
                digest_dir=Path(digests) if digests else None,
            )
    if tag_file:
        Path(tag_file).write_text(chosen + "\n")
    if output:
        with open(output, "a", encoding="utf-8") as f:
            f.write(f"candidate={chosen}\n")
    print(f"candidate tag: {chosen}")


@task(
    help={
        "tag": "image tag in the configured registry/repository",
        "check": "exit non-zero when a platform is missing or not what it claims",
    }
)
def manifest(c: Context, tag: str, check: bool = False) -> None:
    """Print the platforms and digests of a manifest list."""
    with failures():
        promote_mod.inspect(_cfg(c), tag, check=check)


@task(
    iterable=["digest"],
    help={
        "tag": "tag to create",
        "digests": "comma-separated platform digests (sha256:...)",
        "digest": "a platform digest (repeatable)",
        "dry": "print the command only",
    },
)
def manifest_create(
    c: Context, tag: str, digests: str = "", digest: list[str] | None = None, dry: bool = False
) -> None:
    """Assemble a manifest list from per-platform digests (imagetools create)."""
    items = [d for d in digests.replace(" ", ",").split(",") if d] + list(digest or [])
    with failures():
        promote_mod.create(_cfg(c), tag, items, dry=dry)


@task(
    help={
        "tag": "candidate tag",
        "platform": "platform to test (default: this host's)",
        "suite": "auto (pytest from the test image if published, + smoke), smoke (does not "
        "count where a test image exists), full",
        "key": "SSH private key that signs the report (CLICKVOTE_SIGNING_KEY)",
        "key_env": "name of an environment variable holding the private key itself (CI)",
        "out": "verifications directory (default: verifications/)",
        "no_rebuild": "do not rebuild the candidate from its commit; the report records "
        "REASON (it then counts only where no rebuild is required)",
        "dry": "print what would be verified",
    }
)
def verify(
    c: Context,
    tag: str,
    platform: str = "",
    suite: str = "auto",
    key: str = "",
    key_env: str = "",
    out: str = "",
    no_rebuild: str = "",
    dry: bool = False,
) -> None:
    """Test a candidate on this machine, rebuild it from its commit, write a signed report."""
    with failures(), signing.key_from_env(key_env) as from_env:
        cfg = _cfg(c, verifications_dir=Path(out).resolve() if out else None)
        key = from_env or key
        verify_mod.verify(
            cfg,
            tag,
            platform=_platform(platform),
            suite=suite,
            key=key,
            no_rebuild=no_rebuild,
            dry=dry,
        )


def _platform(value: str) -> str:
    if not value or "/" in value:
        return value
    from ci import project

    return project.arches().get(value, value)


@task(
    help={
        "tag": "candidate tag",
        "version": "release version, e.g. 1.2.3",
        "latest": "also move the latest tag",
        "quorum": "--dry only: signers needed per ARM platform",
        "allowed": "--dry only: another allowed_signers file",
        "out": "--dry only: another verifications directory",
        "dry": "check everything, print the tags that would be created",
    }
)
def promote(
    c: Context,
    tag: str,
    version: str = "",
    latest: bool = False,
    quorum: int = 0,
    allowed: str = "",
    out: str = "",
    dry: bool = False,
) -> None:
    """Release a verified candidate under VERSION (and latest) without rebuilding."""
    if not version:
        raise fail("--version is required")
    with failures():
        cfg = _cfg(c, quorum=quorum or None, verifications_dir=Path(out).resolve() if out else None)
        trust = Path(allowed).resolve() if allowed else None
        if not dry:
            promote_mod.check_trust(cfg, trust)
        promote_mod.promote(cfg, tag, version=version, latest=latest, allowed=trust, dry=dry)


@task(
    help={
        "tag": "candidate tag",
        "allowed": "another allowed_signers file",
        "out": "another verifications directory",
    }
)
def release_notes(c: Context, tag: str, allowed: str = "", out: str = "") -> None:
    """Print the figures of TAG's signed reports per platform and device (Markdown)."""
    with failures():
        cfg = _cfg(c, verifications_dir=Path(out).resolve() if out else None)
        print(notes_mod.release_notes(cfg, tag, Path(allowed).resolve() if allowed else None))


@task(help={"output": "append to this file (in GitHub Actions: $GITHUB_OUTPUT)"})
def ci_matrix(c: Context, output: str = "") -> None:
    """Python version and platform matrix for the GitHub workflows (docker-bake.hcl's)."""
    from ci import workflow

    lines = workflow.outputs()
    if output:
        with open(output, "a", encoding="utf-8") as f:
            f.write(lines)
    print(lines, end="")


TASKS: tuple[Task[Any], ...] = (
    ci_matrix,
    registry,
    publish,
    manifest,
    manifest_create,
    verify,
    promote,
    release_notes,
)
