"""``inv manifest`` and ``inv promote``: inspect candidates, release them without rebuilding."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from ci import project, shell
from ci.release import (
    ReleaseError,
    figures,
    imagetools,
    oci,
    quorum,
    reports,
    signers,
    signing,
)
from ci.release.config import ReleaseConfig

_VERSION = re.compile(r"^\d+\.\d+\.\d+(\.post\d+)?$")


def inspect(cfg: ReleaseConfig, tag: str, *, check: bool) -> oci.Index:
    """Print the platforms and digests of ``tag``; with ``check`` fail on any problem."""
    idx = imagetools.index(cfg.image(tag))
    print(oci.format_index(idx))
    if not check:
        return idx
    result = oci.check_index(
        idx, project.platforms(), imagetools.configs(cfg, idx), imagetools.predicates(cfg, idx)
    )
    for note in result.notes:
        print(f"note: {note}")
    if not result.ok:
        raise ReleaseError(f"{cfg.image(tag)}: " + "; ".join(result.problems))
    print(f"ok: {', '.join(idx.images)}")
    return idx


def source_refs(cfg: ReleaseConfig, digests: Sequence[str]) -> list[str]:
    refs = []
    for d in digests:
        if re.fullmatch(r"sha256:[0-9a-f]{64}", d):
            refs.append(cfg.image(d))
        elif "@sha256:" in d:
            refs.append(d)
        else:
            raise ReleaseError(f"{d!r} is neither sha256:<64 hex> nor REPO@sha256:<64 hex>")
    if not refs:
        raise ReleaseError("give at least one platform digest")
    return refs


def create(cfg: ReleaseConfig, tag: str, digests: Sequence[str], *, dry: bool) -> None:
    reports.check_tag(tag)
    imagetools.create(cfg.image(tag), source_refs(cfg, digests), dry=dry)
    if not dry:
        print(oci.format_index(imagetools.index(cfg.image(tag))))


def test_images(cfg: ReleaseConfig, tag: str) -> dict[str, str]:
    """Platform -> digest of the candidate's test image (none when it was published without)."""
    ref = cfg.image(tag, test=True)
    if not imagetools.exists(ref):
        return {}
    return {p: d.digest for p, d in imagetools.index(ref).images.items()}


def check_reports(
    cfg: ReleaseConfig, tag: str, candidate: oci.Index, allowed: Path
) -> list[quorum.ReportCheck]:
    tests = test_images(cfg, tag)
    revocations = signers.load_revoked(allowed)
    checks = []
    for path in reports.find(cfg.verifications_dir, tag):
        data = reports.load(path)
        sig = signing.verify(path, allowed, signers.signing_time(data))
        checks.append(quorum.check_report(path.name, data, sig, tag, candidate, tests, revocations))
    return checks


def evaluate(cfg: ReleaseConfig, tag: str, candidate: oci.Index, allowed: Path) -> list[str]:
    """Print the per-platform table; return every reason the promotion must not happen."""
    checks = check_reports(cfg, tag, candidate, allowed)
    for c in checks:
        print(
            f"  {c.name}: {c.platform or '?'} signer={c.signer or '?'} {c.key}"
            f" claims machine {c.fingerprint[:12] or '?'} -> {_state(c, cfg)}"
        )
    platforms = project.platforms()
    verdicts = quorum.tally(checks, platforms, cfg.quorum_for, cfg.rebuild_required)
    print(quorum.format_table(verdicts))
    print("figures measured per platform and device (emulated: QEMU's, not the device's):")
    print(
        figures.table(
            r for p in reports.find(cfg.verifications_dir, tag) if _is_report(r := reports.load(p))
        )
    )
    reasons = [r for v in verdicts for r in v.reasons]
    return reasons + quorum.unplaced(checks, platforms)


def _is_report(data: object) -> bool:
    return isinstance(data, dict) and not reports.structural_problems(data)


def _state(c: quorum.ReportCheck, cfg: ReleaseConfig) -> str:
    if not c.ok:
        return "REJECTED"
    if c.ignored:
        return f"ignored: {c.ignored}"
    if c.emulated:
        return "emulated, not counted"
    if c.smoke_only:
        return f"not counted: {c.smoke_only}"
    if c.rebuild and (c.differs or cfg.rebuild_required(c.platform)):
        return f"not counted: {c.rebuild}"
    return "counts" + (f" ({c.rebuild})" if c.rebuild else ", rebuild matched")


def trust_overrides(cfg: ReleaseConfig, allowed: Path | None) -> list[str]:
    """Where ``cfg`` and ``allowed`` differ from the committed quorum and trust root
    (``ReleaseConfig``'s defaults and ``verifications/allowed_signers``)."""
    committed = ReleaseConfig()
    found = []
    if cfg.quorum != committed.quorum or dict(cfg.platform_quorum) != dict(
        committed.platform_quorum
    ):
        found.append(f"quorum {cfg.quorum} (committed: {committed.quorum})")
    if cfg.verifications_dir.resolve() != committed.verifications_dir.resolve():
        found.append(f"verifications directory {cfg.verifications_dir}")
    trusted = committed.verifications_dir / "allowed_signers"
    if allowed is not None and allowed.resolve() != trusted.resolve():
        found.append(f"allowed signers {allowed}")
    return found


def check_trust(cfg: ReleaseConfig, allowed: Path | None) -> None:
    """A real promotion reads quorum and allowed signers from the committed configuration."""
    found = trust_overrides(cfg, allowed)
    if found:
        raise ReleaseError(
            "promotion uses the committed quorum and verifications/allowed_signers; "
            f"overrides ({'; '.join(found)}) are for --dry runs only"
        )


def check_version(version: str, tag: str) -> None:
    if not _VERSION.match(version):
        raise ReleaseError(f"--version {version!r} is not a release version like 1.2.3")
    if version == tag:
        raise ReleaseError("the release version must differ from the candidate tag")


def promote(
    cfg: ReleaseConfig,
    tag: str,
    *,
    version: str,
    latest: bool = False,
    allowed: Path | None = None,
    dry: bool = False,
) -> None:
    check_version(version, tag)
    allowed = allowed or cfg.verifications_dir / "allowed_signers"
    candidate = inspect(cfg, tag, check=True)
    reasons = evaluate(cfg, tag, candidate, allowed)
    if reasons:
        raise ReleaseError(f"not promoting {tag}:\n  " + "\n  ".join(reasons))
    targets = [version] + (["latest"] if latest else [])
    for target in targets:
        _retag(cfg, candidate, target, dry=dry)
    print(
        f"{'would promote' if dry else 'promoted'} {tag} ({candidate.digest}) as "
        f"{', '.join(targets)}"
    )


def _retag(cfg: ReleaseConfig, candidate: oci.Index, target: str, *, dry: bool) -> None:
    """Point ``target`` at the candidate's index; an existing release tag must agree."""
    ref = cfg.image(target)
    if target != "latest" and imagetools.exists(ref):
        existing = imagetools.index(ref)
        if _images(existing) != _images(candidate):
            raise ReleaseError(
                f"{ref} already exists with other images: releases are never overwritten"
            )
        shell.echo(f"{ref} already points at these images")
        return
    imagetools.create(ref, [cfg.image(candidate.digest)], dry=dry)
    if dry:
        return
    released = imagetools.index(ref)
    if _images(released) != _images(candidate):
        raise ReleaseError(f"{ref} does not carry the candidate's platform digests")


def _images(idx: oci.Index) -> dict[str, str]:
    return {p: d.digest for p, d in idx.images.items()}
