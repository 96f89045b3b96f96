"""Pieces of `inv verify` that need no Docker: JUnit counts, suite choice, test totals."""

from __future__ import annotations

import pytest

from ci.release import ReleaseError, verify
from ci.release.smoke import Check, Smoke

JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" errors="1"
failures="2" skipped="3" tests="20" time="1.0"></testsuite></testsuites>"""


def test_parse_junit() -> None:
    assert verify.parse_junit(JUNIT) == {"passed": 14, "failed": 2, "errors": 1, "skipped": 3}


def test_choose_suite() -> None:
    d = "sha256:" + "a" * 64
    assert verify.choose_suite("auto", d) == "pytest+smoke"
    assert verify.choose_suite("auto", None) == "smoke"
    assert verify.choose_suite("smoke", d) == "smoke"
    with pytest.raises(ReleaseError, match="needs the candidate's test image"):
        verify.choose_suite("full", None)
    with pytest.raises(ReleaseError, match="--suite"):
        verify.choose_suite("most", d)


def test_tests_section_adds_smoke_checks() -> None:
    smoke = Smoke(port=1, checks=[Check("a", True), Check("b", False, "boom")])
    pytest_counts = {"passed": 10, "failed": 1, "errors": 1, "skipped": 2}
    t = verify.tests_section("pytest+smoke", pytest_counts, smoke)
    assert (t["passed"], t["failed"], t["skipped"]) == (11, 3, 2)


def test_smoke_stops_after_a_failure() -> None:
    smoke = Smoke(port=1)
    assert not smoke.step("first", lambda: (_ for _ in ()).throw(RuntimeError("down")))
    assert not smoke.step("second", lambda: "never")
    assert smoke.checks[1].detail.startswith("not run")
    assert not smoke.ok
