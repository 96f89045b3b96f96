"""The report's ``rebuild`` section: the commit a candidate's provenance names, the section
``inv verify`` writes and how promotion judges it; the device's reason (no Docker)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ci.release import ReleaseError, config, device, machine, quorum, rebuild, verify
from ci.release.signing import Signature
from ci.release.smoke import Check, Smoke

from .factories import TAG, TEST_IMAGES, digest, key_of, make_index, make_report

COMMIT = "0123456789abcdef" * 2 + "01234567"


def provenance(revision: str | None) -> dict[str, Any]:
    vcs = {"revision": revision, "source": "."} if revision is not None else {}
    return {"SLSA": {"metadata": {rebuild.BUILDKIT_METADATA: {"layers": {}, "vcs": vcs}}}}


def test_the_commit_comes_from_the_platforms_provenance() -> None:
    several = {"linux/amd64": provenance(COMMIT), "linux/arm64": provenance("f" * 40)}
    assert rebuild.provenance_commit(several, "linux/amd64") == COMMIT
    assert rebuild.provenance_commit(several, "linux/arm64") == "f" * 40
    assert rebuild.provenance_commit(provenance(COMMIT), "linux/amd64") == COMMIT  # one
    with pytest.raises(ReleaseError, match="names no commit"):
        rebuild.provenance_commit(provenance(None), "linux/amd64")
    with pytest.raises(ReleaseError, match="names no commit"):
        rebuild.provenance_commit({}, "linux/amd64")
    with pytest.raises(ReleaseError, match="no commit"):
        rebuild.provenance_commit(provenance(COMMIT + "-dirty"), "linux/amd64")


def test_the_rebuilds_variables_are_its_commits(tmp_path: Path) -> None:
    (tmp_path / "clickvote").mkdir()
    (tmp_path / "clickvote" / "__init__.py").write_text('__version__ = "9.8.7"\n')
    assert rebuild.commit_env(tmp_path, COMMIT, "1700000000") == {
        "VERSION": "9.8.7",
        "REVISION": COMMIT,
        "CREATED": "2023-11-14T22:13:20Z",
        "SOURCE_DATE_EPOCH": "1700000000",
    }


def report_with(section: dict[str, Any]) -> dict[str, Any]:
    index = make_index()
    host = machine.Host("x86_64", "Linux 6.1", "Debian", "cpu", "a" * 64, {})
    facts = {"machine": "x86_64", "cpu_family": "x86", "cpu_model": "?", "process_exe": "/x"}
    smoke = Smoke(port=1, checks=[Check("healthz", True)])
    tests = verify.tests_section("smoke", None, smoke)
    return verify.build_report(
        config.load({}, environ={}), TAG, index, "linux/amd64",
        index.images["linux/amd64"].digest, host, key_of("alice"), facts, tests, 0.0, 1.0,
        {}, section,
    )  # fmt: skip


def test_the_report_carries_the_rebuild(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verify, "docker_version", lambda: "26.1")
    pulled = make_index().images["linux/amd64"].digest
    same = report_with(rebuild.section(COMMIT, pulled, pulled))
    assert same["rebuild"] == {
        "rebuilt": True, "commit": COMMIT, "pulled": pulled, "rebuilt_digest": pulled,
        "equal": True,
    }  # fmt: skip
    line = f"pulled {pulled}; rebuilt {pulled} from 0123456789ab: equal"
    assert verify.rebuild_line(same) == line
    other = report_with(rebuild.section(COMMIT, pulled, digest("other")))
    assert other["rebuild"]["equal"] is False and "NOT EQUAL" in verify.rebuild_line(other)
    skipped = report_with(rebuild.not_rebuilt("no checkout here"))
    assert skipped["rebuild"] == {"rebuilt": False, "reason": "no checkout here"}
    assert verify.rebuild_line(skipped).endswith("not rebuilt: no checkout here")


def judged(section: dict[str, Any]) -> quorum.ReportCheck:
    index = make_index()
    report = make_report(index, "linux/arm64", "pi-1", signer="alice", rebuild=section)
    return quorum.check_report(
        "r.json", report, Signature(True, "alice", key=key_of("alice")), TAG, index, TEST_IMAGES
    )


def test_promotion_reads_the_section_verify_writes() -> None:
    pulled = make_index().images["linux/arm64"].digest
    matched = judged(rebuild.section(COMMIT, pulled, pulled))
    assert matched.ok and matched.counts_where(True), matched.problems
    unequal = judged(rebuild.section(COMMIT, pulled, digest("other")))
    assert unequal.ok and unequal.differs and not unequal.counts_where(False)
    device_report = judged(rebuild.not_rebuilt(device.NO_REBUILD))
    assert device_report.counts_where(False) and not device_report.counts_where(True)
    assert device_report.rebuild == f"not rebuilt: {device.NO_REBUILD}"


def test_a_device_records_why_it_did_not_rebuild(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(verify, "verify", lambda cfg, tag, **kw: calls.append(kw))
    assert device.main(["1.0.0-rc.1", "--out", str(tmp_path)], environ={}) == 0
    assert device.main(["1.0.0-rc.1", "--out", str(tmp_path), "--no-rebuild", "x"], {}) == 0
    assert [c["no_rebuild"] for c in calls] == [device.NO_REBUILD, "x"]


BASE_DIGEST = "sha256:" + "ab" * 32


def test_the_base_comes_from_the_build_arguments_the_provenance_records() -> None:
    """BuildKit's SLSA v0.2 provenance (the default) and v1 both record BASE_IMAGE."""
    pinned = f"python:3.13-slim-trixie@{BASE_DIGEST}"
    v02 = {"SLSA": {"invocation": {"parameters": {"args": {"build-arg:BASE_IMAGE": pinned}}}}}
    v1 = {
        "SLSA": {
            "buildDefinition": {
                "externalParameters": {"request": {"args": {"build-arg:BASE_IMAGE": pinned}}}
            }
        }
    }
    several = {"linux/amd64": v02, "linux/arm64": provenance(COMMIT)}
    assert rebuild.provenance_base(v02, "linux/amd64") == pinned
    assert rebuild.provenance_base(v1, "linux/amd64") == pinned
    assert rebuild.provenance_base(several, "linux/amd64") == pinned
    assert rebuild.provenance_base(several, "linux/arm64") is None  # no arguments recorded
    assert rebuild.provenance_base({"SLSA": {"invocation": "?"}}, "linux/amd64") is None


def test_a_rebuild_uses_the_candidates_base_where_it_is_pinned(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CLICKVOTE_BASE", "local")
    pinned = f"python:3.13-slim-trixie@{BASE_DIGEST}"
    assert rebuild.rebuild_base(pinned) == pinned
    assert rebuild.rebuild_base("python:3.13-slim-trixie") == "local"  # by tag: may have moved
    assert rebuild.rebuild_base("clickvote-base:trixie") == "local"
    assert rebuild.rebuild_base(None) == "local"
    assert rebuild.rebuild_base(f"python@sha256:{'ab' * 31}") == "local"  # not a digest
    monkeypatch.delenv("CLICKVOTE_BASE")
    assert rebuild.rebuild_base(None) == "auto"


def test_publish_pins_a_registry_base_named_by_tag(monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib

    from ci import project
    from ci.release import imagetools, publish

    served = b'{"schemaVersion": 2, "manifests": []}'
    asked: list[str] = []

    def inspect_raw(ref: str) -> bytes:
        asked.append(ref)
        if ref == "gone:1":
            raise ReleaseError("gone:1 does not exist in the registry")
        return served

    monkeypatch.setattr(imagetools, "inspect_raw", inspect_raw)
    want = f"python:3.13-slim-trixie@sha256:{hashlib.sha256(served).hexdigest()}"
    assert publish.pin_base("python:3.13-slim-trixie", dry=False) == want
    assert publish.pin_base(want, dry=False) == want  # already pinned: not asked again
    local = project.local_base_image()
    assert publish.pin_base(local, dry=False) == local  # the offline base: not in a registry
    assert asked == ["python:3.13-slim-trixie"]
    with pytest.raises(ReleaseError, match="gone:1 can't be pinned by digest"):
        publish.pin_base("gone:1", dry=False)
