"""Report validation and quorum counting (no Docker, no signatures: those are faked)."""

from __future__ import annotations

from ci.release.quorum import ReportCheck, check_report, format_table, tally
from ci.release.signing import Signature

from .factories import TAG, digest, make_index, make_report

GOOD = Signature(True, principal="alice@example.invalid")
ARM = ["linux/arm64", "linux/arm/v7"]


def quorum_for(platform: str) -> int:
    return 1 if platform == "linux/amd64" else 3


def check(report, signature=GOOD, index=None, name="r.json"):  # type: ignore[no-untyped-def]
    return check_report(name, report, signature, TAG, index or make_index())


def test_good_report_counts() -> None:
    c = check(make_report(make_index(), "linux/arm64"))
    assert c.ok and c.counts, c.problems


def test_bad_signature_rejects() -> None:
    c = check(make_report(make_index(), "linux/arm64"), Signature(False, reason="tampered"))
    assert c.problems == ["tampered"]


def test_digest_of_another_candidate() -> None:
    other = make_index(seed="other")
    c = check(make_report(other, "linux/arm64"))
    assert any("does not match the candidate's" in p and "index digest" in p for p in c.problems)
    assert any("linux/arm64 digest" in p for p in c.problems)


def test_report_for_another_tag() -> None:
    c = check(make_report(make_index(), "linux/arm64", tag="9.9.9-rc.2"))
    assert "report is for tag 9.9.9-rc.2, not 9.9.9-rc.1" in c.problems


def test_platform_not_in_candidate() -> None:
    index = make_index(["linux/amd64", "linux/arm64"])
    report = make_report(make_index(), "linux/arm/v7")
    c = check(report, index=index)
    assert "platform linux/arm/v7 is not in the candidate" in c.problems


def test_emulated_report_is_shown_not_counted() -> None:
    c = check(make_report(make_index(), "linux/arm64", emulated=True))
    assert c.ok and c.emulated and not c.counts


def test_emulated_report_offered_as_real_hardware() -> None:
    report = make_report(
        make_index(),
        "linux/arm64",
        emulated=True,
        emulation__emulated=False,
        emulation__evidence=[],
    )
    c = check(report)
    assert any(p.startswith("emulated report offered as real hardware") for p in c.problems)


def test_qemu_process_alone_is_evidence() -> None:
    report = make_report(
        make_index(), "linux/arm/v7", container__process_exe="/usr/bin/qemu-arm-static"
    )
    c = check(report)
    assert any("qemu-arm-static" in p for p in c.problems)


def test_wrong_uname_for_platform() -> None:
    report = make_report(make_index(), "linux/arm64", container__machine="armv7l")
    assert any("uname -m in the container was armv7l" in p for p in check(report).problems)


def test_failed_tests_block() -> None:
    report = make_report(make_index(), "linux/arm64", result="fail", tests__failed=2)
    assert any("tests failed" in p for p in check(report).problems)


def test_malformed_report() -> None:
    c = check({"schema": 1})
    assert any(p.startswith("missing field") for p in c.problems)
    c = check(make_report(make_index(), "linux/arm64", index_digest="sha256:xyz"))
    assert "index_digest is not a sha256 digest" in c.problems


def checks_for(machines: dict[str, list[str]], **kw) -> list[ReportCheck]:  # type: ignore[no-untyped-def]
    index = make_index()
    return [
        check(make_report(index, p, m, **kw), name=f"{m}-{p[-2:]}.json")
        for p, ms in machines.items()
        for m in ms
    ]


def test_quorum_met() -> None:
    checks = checks_for(
        {"linux/amd64": ["ci"], "linux/arm64": ["a", "b", "c"], "linux/arm/v7": ["d", "e", "f"]}
    )
    verdicts = tally(checks, ["linux/amd64", *ARM], quorum_for)
    assert all(v.ok for v in verdicts), [v.reasons for v in verdicts]
    assert [v.machines for v in verdicts] == [1, 3, 3]
    assert "ok" in format_table(verdicts)


def test_same_machine_counts_once() -> None:
    checks = checks_for({"linux/arm64": ["a", "a", "b"]})
    [v] = tally(checks, ["linux/arm64"], quorum_for)
    assert v.machines == 2 and not v.ok
    assert "2 distinct real machine(s) passed, need 3" in v.reasons[0]
    assert "come from the same machine" in v.reasons[0]


def test_emulated_reports_never_count() -> None:
    index = make_index()
    checks = [check(make_report(index, "linux/arm64", m, emulated=True)) for m in "abc"]
    [v] = tally(checks, ["linux/arm64"], quorum_for)
    assert v.machines == 0 and v.emulated == 3 and not v.ok
    assert "3 emulated report(s) not counted" in v.reasons[0]


def test_missing_platform_reports() -> None:
    checks = checks_for({"linux/arm64": ["a", "b", "c"]})
    verdicts = tally(checks, ["linux/amd64", *ARM], quorum_for)
    failed = {v.platform for v in verdicts if not v.ok}
    assert failed == {"linux/amd64", "linux/arm/v7"}


def test_one_bad_report_blocks_even_with_quorum() -> None:
    checks = checks_for({"linux/arm64": ["a", "b", "c"]})
    checks.append(
        check(
            make_report(make_index(), "linux/arm64", "d"),
            Signature(False, reason="signer not allowed"),
        )
    )
    [v] = tally(checks, ["linux/arm64"], quorum_for)
    assert v.machines == 3 and not v.ok
    assert "rejected: signer not allowed" in v.reasons[0]


def test_digest_helper_is_stable() -> None:
    assert digest("x") == digest("x") != digest("y")
