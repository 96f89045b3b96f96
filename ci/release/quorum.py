"""Which verification reports count toward a release, per platform. Pure.

Everything in a report is its signer's word; what promotion can check is who
signed it. A report counts when it is validly signed by a key of
allowed_signers (and names that key as its signer), well formed, for this
candidate (tag, index digest and that platform's digest), passed, ran the
candidate's test image where the candidate has one for its platform, and
claims real hardware. Emulated and smoke-only reports are listed but never
counted. Each signer counts once per platform, however many machines it
reports, and each claimed machine once. Anything wrong with a report blocks the
promotion: a bad report is removed on purpose, not ignored silently. Reports
by a revoked signer, or signed outside their key's validity window, are
ignored: listed with the reason, neither counted nor blocking. On a platform
whose reports must carry a matching rebuild (``ReleaseConfig.require_rebuild``),
a report counts only if its signer rebuilt the candidate from its commit and got
the digest it pulled (its ``rebuild`` section); the others are listed as
unmatched. A rebuild that gave another digest than the one pulled says the candidate
is not what its commit builds: such a report never counts, on any platform, and on
a platform that requires rebuilds it blocks the promotion.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ci.release import machine
from ci.release.oci import Index
from ci.release.reports import structural_problems
from ci.release.signers import Revocation, revoked, signing_time
from ci.release.signing import Signature

CLAIMS = "machine facts in a report are its signer's claims; each signer counts once per platform"


@dataclass
class ReportCheck:
    name: str
    platform: str = ""
    fingerprint: str = ""
    emulated: bool = False
    signer: str = ""  # the allowed_signers name of the key that signed
    key: str = ""  # that key's fingerprint
    smoke_only: str = ""  # why the tests it ran are not enough to count
    ignored: str = ""  # why its signer's word does not count (revoked, key not valid then)
    rebuild: str = ""  # why its rebuild does not vouch for the digest ("" when it matched)
    differs: bool = False  # it rebuilt the candidate's commit and got another digest
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def counts(self) -> bool:
        return self.ok and not self.emulated and not self.smoke_only and not self.ignored

    def counts_where(self, rebuild_required: bool) -> bool:
        return self.counts and not self.differs and not (rebuild_required and self.rebuild)


def rebuild_mismatch(report: Mapping[str, Any]) -> tuple[str, list[str]]:
    """(why the report's rebuild does not vouch for its digest, problems) from its
    ``rebuild`` section: ``{rebuilt, reason?, commit?, pulled, rebuilt_digest, equal}``."""
    section = report.get("rebuild")
    if section is None:
        return "no rebuild recorded", []
    if not isinstance(section, Mapping) or not isinstance(section.get("rebuilt"), bool):
        return "", ["rebuild is not a {rebuilt, ...} section"]
    if not section["rebuilt"]:
        return f"not rebuilt: {section.get('reason') or 'no reason given'}", []
    pulled, rebuilt = section.get("pulled"), section.get("rebuilt_digest")
    if pulled != report["platform_digest"]:
        return "", [f"rebuild compared {pulled}, not the report's {report['platform_digest']}"]
    if section.get("equal") is not (rebuilt == pulled):
        return "", ["rebuild.equal contradicts its digests"]
    return ("" if rebuilt == pulled else f"{DIFFERS}{rebuilt}, pulled {pulled}"), []


DIFFERS = "rebuilt "  # how ``rebuild_mismatch`` begins when the rebuild gave another digest


def check_report(
    name: str,
    report: Any,
    signature: Signature,
    tag: str,
    candidate: Index,
    test_images: Mapping[str, str],
    revocations: Sequence[Revocation] = (),
) -> ReportCheck:
    """``test_images``: platform -> digest of the candidate's test image for it;
    ``signature`` judged at the report's signing time."""
    check = ReportCheck(name=name, signer=signature.principal, key=signature.key)
    if not signature.ok:
        check.problems.append(signature.reason)
    problems = structural_problems(report)
    if problems:
        check.problems.extend(problems)
        return check
    check.platform = report["platform"]
    check.fingerprint = report["machine"]["fingerprint"]
    check.emulated = bool(report["emulation"]["emulated"])
    if signature.ok:
        check.ignored = signature.outside or revoked(
            revocations, signature.principal, signature.key, signing_time(report)
        )
    if check.ignored:
        return check
    if signature.ok and report["signer"] != signature.key:
        check.problems.append(
            f"report names signer {report['signer'] or '(none)'} but was signed by "
            f"{signature.principal} ({signature.key})"
        )
    check.problems.extend(_candidate_problems(report, tag, candidate))
    check.problems.extend(_hardware_problems(report))
    if report["result"] != "pass" or report["tests"]["failed"]:
        check.problems.append(
            f"tests failed on {check.platform} ({report['tests']['failed']} failed)"
        )
    test_digest = test_images.get(check.platform)
    if test_digest:
        check.smoke_only, problems = _suite(report["tests"], test_digest)
        check.problems.extend(problems)
    check.rebuild, problems = rebuild_mismatch(report)
    check.problems.extend(problems)
    check.differs = check.rebuild.startswith(DIFFERS)
    return check


def _suite(tests: Mapping[str, Any], test_digest: str) -> tuple[str, list[str]]:
    """(why the report does not count, problems) where the candidate has a test image."""
    pytest = tests.get("pytest")
    if not isinstance(pytest, Mapping):
        return f"ran {tests['suite']} only, not the candidate's test image", []
    counts = [pytest.get(k) for k in ("passed", "failed", "errors")]
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in counts):
        return "", ["tests.pytest lacks the test image's passed/failed/errors counts"]
    passed, failed, errors = counts
    if pytest.get("image_digest") != test_digest:
        return "", [
            f"pytest ran test image {pytest.get('image_digest')}, not the candidate's {test_digest}"
        ]
    if failed or errors:
        return "", [f"the test image's suite had {failed} failed, {errors} errors"]
    if not passed:
        return "", ["the test image's suite passed no test"]
    return "", []


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
    smoke_only: int = 0
    rejected: int = 0
    ignored: int = 0
    unmatched: int = 0  # would count, but the platform needs a matching rebuild it lacks
    signers: int = 0  # votes: distinct signers, each on a machine of its own
    reasons: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.reasons


def votes(pairs: Iterable[tuple[str, str]]) -> int:
    """Most (signer, machine) pairs that share neither signer nor machine: a maximum
    bipartite matching, so one key counts once however many machines it reports, and
    one claimed machine once however many keys sign for it."""
    machines: dict[str, set[str]] = {}
    for signer, fingerprint in pairs:
        machines.setdefault(signer, set()).add(fingerprint)
    owner: dict[str, str] = {}

    def place(signer: str, seen: set[str]) -> bool:
        for m in sorted(machines[signer]):
            if m in seen:
                continue
            seen.add(m)
            if m not in owner or place(owner[m], seen):
                owner[m] = signer
                return True
        return False

    return sum(place(signer, set()) for signer in sorted(machines))


def tally(
    checks: Iterable[ReportCheck],
    platforms: Iterable[str],
    quorum_for: Callable[[str], int],
    rebuild_required: Callable[[str], bool] = lambda platform: False,
) -> list[Verdict]:
    checks = list(checks)
    verdicts = []
    for platform in platforms:
        mine = [c for c in checks if c.platform == platform]
        needed = rebuild_required(platform)
        counted = [c for c in mine if c.counts_where(needed)]
        v = Verdict(
            platform,
            quorum_for(platform),
            reports=len(mine),
            emulated=sum(c.ok and not c.ignored and c.emulated for c in mine),
            smoke_only=sum(
                c.ok and not c.ignored and not c.emulated and bool(c.smoke_only) for c in mine
            ),
            rejected=sum(not c.ok for c in mine),
            ignored=sum(c.ok and bool(c.ignored) for c in mine),
            unmatched=sum(c.counts and not c.counts_where(needed) for c in mine),
            signers=votes((c.signer, c.fingerprint) for c in counted),
        )
        v.reasons.extend(
            f"{platform}: report {c.name} rejected: {p}" for c in mine for p in c.problems
        )
        if needed:
            v.reasons.extend(
                f"{platform}: report {c.name}: the candidate's commit {c.rebuild} "
                "(not what its commit builds)"
                for c in mine
                if c.ok and not c.ignored and c.differs
            )
        if v.signers < v.required:
            v.reasons.append(_short_reason(v, counted))
        verdicts.append(v)
    return verdicts


def _short_reason(v: Verdict, counted: list[ReportCheck]) -> str:
    reason = (
        f"{v.platform}: {v.signers} distinct signer(s) on distinct machines passed, "
        f"need {v.required}"
    )
    extra: list[str] = []
    for what, key in (("signed by", "signer"), ("from the same machine", "fingerprint")):
        groups: dict[str, list[str]] = {}
        for c in counted:
            groups.setdefault(getattr(c, key), []).append(c.name)
        extra.extend(
            f"{', '.join(names)} are {what} {value[:12] if key == 'fingerprint' else value}"
            for value, names in groups.items()
            if len(names) > 1
        )
    if extra:
        extra = ["; ".join(extra) + " (counted once)"]
    if v.emulated:
        extra.append(f"{v.emulated} emulated report(s) not counted")
    if v.smoke_only:
        extra.append(f"{v.smoke_only} smoke-only report(s) not counted")
    if v.ignored:
        extra.append(f"{v.ignored} report(s) of revoked or expired keys ignored")
    if v.unmatched:
        extra.append(f"{v.unmatched} report(s) without a matching rebuild not counted")
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
    rows = [
        (
            "platform",
            "reports",
            "emulated",
            "smoke-only",
            "ignored",
            "unmatched",
            "rejected",
            "signers",
            "need",
            "verdict",
        )
    ]
    for v in verdicts:
        rows.append(
            (
                v.platform,
                str(v.reports),
                str(v.emulated),
                str(v.smoke_only),
                str(v.ignored),
                str(v.unmatched),
                str(v.rejected),
                str(v.signers),
                str(v.required),
                "ok" if v.ok else "FAIL",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    table = [
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows
    ]
    return "\n".join([*table, f"({CLAIMS})"])
