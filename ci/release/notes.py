"""``inv release-notes TAG``: the figures each signed report of a candidate measured,
per platform and device model, as a Markdown table for the release notes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ci.release import figures, reports, signers, signing
from ci.release.config import ReleaseConfig


def signed_reports(cfg: ReleaseConfig, tag: str, allowed: Path) -> list[dict[str, Any]]:
    """Well-formed reports of ``tag`` that an allowed signer made while its key was valid
    and not revoked."""
    revocations = signers.load_revoked(allowed)
    out = []
    for path in reports.find(cfg.verifications_dir, tag):
        data = reports.load(path)
        if reports.structural_problems(data):
            continue
        signed = signers.signing_time(data)
        sig = signing.verify(path, allowed, signed)
        if (
            sig.ok
            and not sig.outside
            and not signers.revoked(revocations, sig.principal, sig.key, signed)
        ):
            out.append(data)
    return out


def release_notes(cfg: ReleaseConfig, tag: str, allowed: Path | None = None) -> str:
    allowed = allowed or cfg.verifications_dir / "allowed_signers"
    found = signed_reports(cfg, tag, allowed)
    head = (
        f"Measured on the devices that verified {tag} ({len(found)} signed report(s); "
        "votes/s and server CPU per acked vote at saturation with benchmarks/loadgen.py on "
        "the device, idle RSS, `clickvote serve` to first /healthz; emulated rows ran under "
        "QEMU and say little about the device):"
    )
    return head + "\n\n" + figures.markdown(found) + "\n"
