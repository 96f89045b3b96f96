"""Which verification reports count toward a release, per platform. Pure.

A report counts when it is validly signed, well formed, for this candidate
(tag, index digest and that platform's digest), passed, and ran on real
hardware. Emulated reports are listed but never counted. Reports from the same
machine (same fingerprint) count once. Anything wrong with a report blocks the
promotion: a bad report is removed on purpose, not ignored silently.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ci.release import machine
from ci.release.oci import Index
from ci.release.reports import FINGERPRINT_PREFIX, structural_problems
from ci.release.signing import Signature


@dataclass
class ReportCheck:
    name: str
    platform: str = ""
    fingerprint: str = ""
    emulated: bool = False
    signer: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def counts(self) -> bool:
        return self.ok and not self.emulated


def check_report(
    name: str, report: Any, signature: Signature, tag: str, candidate: Index
) -> ReportCheck:
    check = ReportCheck(name=name, signer=signature.principal)
    if not signature.ok:
        check.problems.append(signature.reason)
    problems = structural_problems(report)
    if problems:
        check.problems.extend(problems)
        return check
    check.platform = report["platform"]
    check.fingerprint = report["machine"]["fingerprint"]
    check.emulated = bool(report["emulation"]["emulated"])
    check.problems.extend(_candidate_problems(report, tag, candidate))
    check.problems.extend(_hardware_problems(report))
    if report["result"] != "pass" or report["tests"]["failed"]:
        check.problems.append(
            f"tests failed on {check.platform} ({report['tests']['failed']} failed)"
        )
    return check


def _candidate_problems(report: Mapping[str, Any], tag: str, candidate: Index) -> list[str]:
    problems = []
    if report["tag"] != tag:
        problems.append(f"report is for tag {report['tag']}, not {tag}")
    if report["index_digest"] != candidate.digest:
        problems.append(
            f"index digest {report['index_digest']} does not match the "
            f"candidate's {candidate.digest}"
        )
    platform = report["platform"]
    image = candidate.images.get(platform)
    if image is None:
        problems.append(f"platform {platform} is not in the candidate")
    elif report["platform_digest"] != image.digest:
        problems.append(
            f"{platform} digest {report['platform_digest']} does not match the "
            f"candidate's {image.digest}"
        )
    return problems


def _hardware_problems(report: Mapping[str, Any]) -> list[str]:
    platform, container = report["platform"], report["container"]
    problems = []
    accepted = machine.ACCEPTED_MACHINES.get(platform)
    if accepted is not None and container["machine"] not in accepted:
        problems.append(
            f"uname -m in the container was {container['machine']}, not what {platform} runs as"
        )
    found = machine.detect_emulation(
        report["machine"]["host_machine"],
        container["machine"],
        container.get("cpu_family"),
        container.get("process_exe"),
    )
    if found.emulated and not report["emulation"]["emulated"]:
        problems.append("emulated report offered as real hardware: " + "; ".join(found.evidence))
    return problems


@dataclass
class Verdict:
    platform: str
    required: int
    reports: int = 0
    emulated: int = 0
    rejected: int = 0
    machines: int = 0
    reasons: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.reasons


def tally(
    checks: Iterable[ReportCheck], platforms: Iterable[str], quorum_for: Callable[[str], int]
) -> list[Verdict]:
    checks = list(checks)
    verdicts = []
    for platform in platforms:
        mine = [c for c in checks if c.platform == platform]
        v = Verdict(
            platform,
            quorum_for(platform),
            reports=len(mine),
            emulated=sum(c.ok and c.emulated for c in mine),
            rejected=sum(not c.ok for c in mine),
        )
        by_machine: dict[str, list[str]] = {}
        for c in mine:
            if c.counts:
                by_machine.setdefault(c.fingerprint, []).append(c.name)
        v.machines = len(by_machine)
        v.reasons.extend(
            f"{platform}: report {c.name} rejected: {p}" for c in mine for p in c.problems
        )
        if v.machines < v.required:
            v.reasons.append(_short_reason(v, by_machine))
        verdicts.append(v)
    return verdicts


def _short_reason(v: Verdict, by_machine: Mapping[str, list[str]]) -> str:
    reason = f"{v.platform}: {v.machines} distinct real machine(s) passed, need {v.required}"
    dups = [
        f"{', '.join(names)} come from the same machine {fp[:FINGERPRINT_PREFIX]}"
        for fp, names in by_machine.items()
        if len(names) > 1
    ]
    extra = []
    if dups:
        extra.append("; ".join(dups) + " (counted once)")
    if v.emulated:
        extra.append(f"{v.emulated} emulated report(s) not counted")
    return reason + (" (" + "; ".join(extra) + ")" if extra else "")


def unplaced(checks: Iterable[ReportCheck], platforms: Iterable[str]) -> list[str]:
    """Reasons for reports that belong to no expected platform (unreadable or foreign)."""
    known = set(platforms)
    return [
        f"report {c.name} rejected: {'; '.join(c.problems) or 'unknown platform'}"
        for c in checks
        if c.platform not in known
    ]


def format_table(verdicts: Iterable[Verdict]) -> str:
    rows = [("platform", "reports", "emulated", "rejected", "machines", "need", "verdict")]
    for v in verdicts:
        rows.append(
            (
                v.platform,
                str(v.reports),
                str(v.emulated),
                str(v.rejected),
                str(v.machines),
                str(v.required),
                "ok" if v.ok else "FAIL",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )
