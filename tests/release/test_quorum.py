"""Report validation and quorum counting (no Docker, no signatures: those are faked)."""

from __future__ import annotations

from typing import Any

from ci.release.quorum import ReportCheck, check_report, format_table, tally, votes
from ci.release.signing import Signature

from .factories import TAG, TEST_IMAGES, digest, key_of, make_index, make_report

ARM = ["linux/arm64", "linux/arm/v7"]


def quorum_for(platform: str) -> int:
    return 1 if platform == "linux/amd64" else 3


def signed_by(signer: str) -> Signature:
    """A valid signature by ``signer``'s key (the real ones are tested in test_signing)."""
    return Signature(True, principal=f"{signer}@example.invalid", key=key_of(signer))


def check(  # type: ignore[no-untyped-def]
    report, signature=None, index=None, name="r.json", test_images=TEST_IMAGES
):
    signature = signature or signed_by(report.get("signer", "SHA256:?").split(":", 1)[1])
    return check_report(name, report, signature, TAG, index or make_index(), test_images)


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
    """Reports from each named machine, each signed by a signer of the same name."""
    index = make_index()
    return [
        check(make_report(index, p, m, signer=m, **kw), name=f"{m}-{p[-2:]}.json")
        for p, ms in machines.items()
        for m in ms
    ]


def test_quorum_met() -> None:
    checks = checks_for(
        {"linux/amd64": ["ci"], "linux/arm64": ["a", "b", "c"], "linux/arm/v7": ["d", "e", "f"]}
    )
    verdicts = tally(checks, ["linux/amd64", *ARM], quorum_for)
    assert all(v.ok for v in verdicts), [v.reasons for v in verdicts]
    assert [v.signers for v in verdicts] == [1, 3, 3]
    table = format_table(verdicts)
    assert "ok" in table and "signers" in table
    assert "machine facts in a report are its signer's claims" in table


def test_same_machine_counts_once() -> None:
    index = make_index()
    checks = [
        check(make_report(index, "linux/arm64", m, signer=s), name=f"{s}.json")
        for m, s in [("a", "a"), ("a", "b"), ("c", "c")]
    ]
    [v] = tally(checks, ["linux/arm64"], quorum_for)
    assert v.signers == 2 and not v.ok
    assert "2 distinct signer(s) on distinct machines passed, need 3" in v.reasons[0]
    assert "a.json, b.json are from the same machine" in v.reasons[0]


def test_one_key_with_three_fabricated_machines_counts_once() -> None:
    """Machine facts are the signer's word: three made-up Raspberry Pis, one key."""
    index = make_index()
    checks = []
    for platform in ARM:
        for n in range(3):
            report = make_report(
                index,
                platform,
                f"pi-{n}",
                signer="mallory",
                machine__cpu_model="Raspberry Pi 4 Model B Rev 1.4",
            )
            checks.append(check(report, name=f"pi-{n}-{platform[-2:]}.json"))
    assert all(c.counts for c in checks), [c.problems for c in checks]
    verdicts = tally(checks, ARM, quorum_for)
    assert [v.signers for v in verdicts] == [1, 1]
    assert not any(v.ok for v in verdicts)
    assert "1 distinct signer(s) on distinct machines passed, need 3" in verdicts[0].reasons[0]
    assert "are signed by mallory@example.invalid (counted once)" in verdicts[0].reasons[0]


def test_votes_need_a_signer_and_a_machine_each() -> None:
    assert votes([]) == 0
    assert votes([("a", "m1"), ("a", "m2"), ("a", "m3")]) == 1
    assert votes([("a", "m1"), ("b", "m1"), ("c", "m1")]) == 1
    # a could take m1 or m2; b only m1: both count (a on m2)
    assert votes([("a", "m1"), ("a", "m2"), ("b", "m1")]) == 2
    assert votes([("a", "m1"), ("b", "m1"), ("c", "m2"), ("c", "m3")]) == 2


def test_report_naming_another_key_as_signer() -> None:
    report = make_report(make_index(), "linux/arm64", signer="alice")
    c = check(report, signed_by("mallory"))
    assert any("names signer SHA256:alice but was signed by mallory" in p for p in c.problems)


def test_smoke_only_report_does_not_count_where_a_test_image_exists() -> None:
    index = make_index()
    smoke: dict[str, Any] = {"tests__suite": "smoke", "tests__passed": 5, "tests__pytest": None}
    c = check(make_report(index, "linux/arm64", **smoke))
    assert c.ok and not c.counts and "ran smoke only" in c.smoke_only
    checks = [
        check(make_report(index, "linux/arm64", m, signer=m, **smoke), name=f"{m}.json")
        for m in "abc"
    ]
    [v] = tally(checks, ["linux/arm64"], quorum_for)
    assert v.signers == 0 and v.smoke_only == 3 and not v.ok
    assert "3 smoke-only report(s) not counted" in v.reasons[0]
    # a candidate published without a test image: the smoke test is all there is
    without = {p: d for p, d in TEST_IMAGES.items() if p != "linux/arm64"}
    assert check(make_report(index, "linux/arm64", **smoke), test_images=without).counts


def test_pytest_counts_must_be_of_the_candidates_test_image() -> None:
    index = make_index()
    other = make_report(index, "linux/arm64", test_image=digest("another test image"))
    assert any("not the candidate's" in p for p in check(other).problems)
    failed = make_report(index, "linux/arm64", tests__pytest__failed=1)
    assert any("1 failed, 0 errors" in p for p in check(failed).problems)
    none = make_report(index, "linux/arm64", tests__pytest__passed=0)
    assert "the test image's suite passed no test" in check(none).problems
    uncounted = make_report(index, "linux/arm64", tests__pytest={"image_digest": "x"})
    assert any("lacks the test image's" in p for p in check(uncounted).problems)


def test_emulated_reports_never_count() -> None:
    index = make_index()
    checks = [check(make_report(index, "linux/arm64", m, signer=m, emulated=True)) for m in "abc"]
    [v] = tally(checks, ["linux/arm64"], quorum_for)
    assert v.signers == 0 and v.emulated == 3 and not v.ok
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
    assert v.signers == 3 and not v.ok
    assert "rejected: signer not allowed" in v.reasons[0]


def test_digest_helper_is_stable() -> None:
    assert digest("x") == digest("x") != digest("y")


# --- rebuilds: on platforms that require one, only a matching rebuild counts ---------------


def rebuilt(index: Any, platform: str, *, to: str = "", **section: Any) -> dict[str, Any]:
    pulled = index.images[platform].digest
    out = to or pulled
    return {"rebuilt": True, "commit": "a" * 40, "pulled": pulled, "rebuilt_digest": out,
            "equal": out == pulled, **section}  # fmt: skip


def rebuild_checks(sections: dict[str, Any]) -> list[ReportCheck]:
    index = make_index()
    out = []
    for m, section in sections.items():
        report = make_report(index, "linux/arm64", m, signer=m)
        if section is not None:
            report["rebuild"] = section(index) if callable(section) else section
        out.append(check(report, name=f"{m}.json"))
    return out


def test_where_a_rebuild_is_required_only_matching_rebuilds_count() -> None:
    checks = rebuild_checks(
        {
            "a": lambda i: rebuilt(i, "linux/arm64"),
            "b": lambda i: rebuilt(i, "linux/arm64"),
            "c": lambda i: rebuilt(i, "linux/arm64", to=digest("another build")),
            "d": {"rebuilt": False, "reason": "no checkout on this device"},
            "e": None,  # a report of a verifier that records no rebuild
        }
    )
    assert all(c.ok for c in checks), [c.problems for c in checks]
    assert [c.rebuild for c in checks] == [
        "",
        "",
        f"rebuilt {digest('another build')}, pulled {make_index().images['linux/arm64'].digest}",
        "not rebuilt: no checkout on this device",
        "no rebuild recorded",
    ]
    [strict] = tally(checks, ["linux/arm64"], quorum_for, lambda p: p == "linux/arm64")
    assert (strict.signers, strict.unmatched, strict.ok) == (2, 3, False)
    assert "3 report(s) without a matching rebuild not counted" in strict.reasons[1]
    assert "unmatched" in format_table([strict])
    assert "c.json" in strict.reasons[0] and "not what its commit builds" in strict.reasons[0]
    [lenient] = tally(checks, ["linux/arm64"], quorum_for)  # not required: the unequal one
    assert (lenient.signers, lenient.unmatched, lenient.ok) == (4, 1, True)  # never counts


def test_an_unequal_rebuild_never_counts_and_blocks_where_rebuilds_are_required() -> None:
    checks = rebuild_checks(
        {m: (lambda i: rebuilt(i, "linux/arm64")) for m in "abc"}
        | {"d": lambda i: rebuilt(i, "linux/arm64", to=digest("another build"))}
    )
    assert [c.differs for c in checks] == [False, False, False, True]
    assert not checks[3].counts_where(False) and not checks[3].counts_where(True)
    [strict] = tally(checks, ["linux/arm64"], quorum_for, lambda p: True)
    assert strict.signers == 3 and not strict.ok  # a quorum of three, blocked by the fourth
    assert strict.reasons == [
        f"linux/arm64: report d.json: the candidate's commit rebuilt {digest('another build')}, "
        f"pulled {make_index().images['linux/arm64'].digest} (not what its commit builds)"
    ]
    [lenient] = tally(checks, ["linux/arm64"], quorum_for)
    assert (lenient.signers, lenient.unmatched, lenient.ok) == (3, 1, True)


def test_a_rebuild_section_must_be_about_the_reports_digest() -> None:
    [other, liar, odd] = rebuild_checks(
        {
            "a": lambda i: rebuilt(i, "linux/arm64", pulled=digest("older candidate")),
            "b": lambda i: rebuilt(i, "linux/arm64", to=digest("x"), equal=True),
            "c": {"rebuilt": "yes"},
        }
    )
    assert other.problems == [
        f"rebuild compared {digest('older candidate')}, not the report's "
        f"{make_index().images['linux/arm64'].digest}"
    ]
    assert liar.problems == ["rebuild.equal contradicts its digests"]
    assert odd.problems == ["rebuild is not a {rebuilt, ...} section"]
