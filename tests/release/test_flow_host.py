"""The whole release flow against the local registry (127.0.0.1 only).

One candidate is published per session into a separate test repository (the
build is cached after the first run). ARM machines are simulated by reports
signed with throwaway SSH keys; the emulated runs on this x86_64 host are real.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ci import project
from ci.release import ReleaseError, config, imagetools, machine, promote, publish, registry
from ci.release import verify as verify_mod
from ci.release.oci import Index

from .factories import allowed_signers, keypair, make_report, write_signed

pytestmark = pytest.mark.host
ARM = [p for p in project.platforms() if p != "linux/amd64"]


def _docker_ok() -> bool:
    return (
        shutil.which("docker") is not None
        and subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0
    )


@dataclass
class Candidate:
    cfg: config.ReleaseConfig
    tag: str
    index: Index
    keys: Path  # throwaway keys live here
    real_reports: dict[str, Path]  # platform -> report made by `verify` on this host


@pytest.fixture(scope="session")
def cfg() -> config.ReleaseConfig:
    if not _docker_ok():
        pytest.fail("no Docker engine answers: run `inv setup`")
    base = config.load({}, environ={})
    cfg = base.with_overrides(
        repository="clickvote-release-test", test_repository="clickvote-release-test-tests"
    )
    print(registry.start(cfg))
    return cfg


@pytest.fixture(scope="session")
def candidate(cfg: config.ReleaseConfig, tmp_path_factory: pytest.TempPathFactory) -> Candidate:
    tag = publish.publish(cfg, with_test=True)
    keys = tmp_path_factory.mktemp("keys")
    local = keypair(keys, "this-host")
    work = cfg.with_overrides(verifications_dir=tmp_path_factory.mktemp("verify"))
    reports = {}
    for platform, suite in [("linux/amd64", "smoke"), *[(p, "smoke") for p in ARM]]:
        try:
            reports[platform] = verify_mod.verify(
                work, tag, platform=platform, suite=suite, key=str(local)
            )
        except ReleaseError as e:  # the app's own tests may fail; the report still exists
            print(f"verify {platform}: {e}", file=sys.stderr)
            reports[platform] = Path(str(e).rsplit("report: ", 1)[-1])
    return Candidate(cfg, tag, imagetools.index(cfg.image(tag)), keys, reports)


def test_registry_start_is_idempotent(cfg: config.ReleaseConfig) -> None:
    assert "running" in registry.start(cfg) or "answers" in registry.start(cfg)
    assert registry.answers(cfg)


def test_candidate_is_complete(candidate: Candidate) -> None:
    assert candidate.tag.startswith(f"{_version()}-rc.")
    idx = promote.inspect(candidate.cfg, candidate.tag, check=True)
    assert list(idx.images) == project.platforms()
    assert len(idx.attestations) == len(project.platforms())


def _version() -> str:
    from ci.release import candidate as cand

    return cand.app_version()


def _report(path: Path) -> dict:  # type: ignore[type-arg]
    return json.loads(path.read_text())


def test_native_verification_with_the_test_image(candidate: Candidate, tmp_path: Path) -> None:
    """`--suite full` runs the candidate's test image; its counts land in the report."""
    cfg = candidate.cfg.with_overrides(verifications_dir=tmp_path)
    key = str(candidate.keys / "this-host")
    try:
        path = verify_mod.verify(cfg, candidate.tag, platform="linux/amd64", suite="full", key=key)
    except ReleaseError as e:  # a failing app test fails the report, not this test
        path = Path(str(e).rsplit("report: ", 1)[-1])
    assert path is not None
    r = _report(path)
    assert r["tests"]["suite"] == "pytest+smoke" and r["tests"]["pytest"]["passed"] > 0
    assert r["tests"]["passed"] >= r["tests"]["pytest"]["passed"]


def test_native_verification(candidate: Candidate) -> None:
    r = _report(candidate.real_reports["linux/amd64"])
    assert r["emulation"]["emulated"] is False, r["emulation"]
    assert r["container"]["machine"] == "x86_64"
    assert r["index_digest"] == candidate.index.digest
    assert r["platform_digest"] == candidate.index.images["linux/amd64"].digest
    assert r["result"] == "pass", r["tests"]
    assert [c["ok"] for c in r["tests"]["smoke"]] == [True] * 5


@pytest.mark.parametrize("platform", ARM)
def test_emulated_runs_are_detected(candidate: Candidate, platform: str) -> None:
    if machine.host_platform() == platform:
        pytest.skip("this host runs the platform natively")
    r = _report(candidate.real_reports[platform])
    assert r["result"] == "pass", r["tests"]
    assert r["emulation"]["emulated"] is True
    assert any("qemu" in e for e in r["emulation"]["evidence"]), r["emulation"]
    assert r["container"]["machine"] in machine.ACCEPTED_MACHINES[platform]


# --- promotion ----------------------------------------------------------------------------


@pytest.fixture()
def evidence(
    candidate: Candidate, tmp_path: Path
) -> Iterator[tuple[config.ReleaseConfig, Path, dict[str, Path]]]:
    """A verifications dir that meets the quorum: the real reports of this host (amd64
    native, ARM emulated: shown, not counted) plus three simulated ARM machines each."""
    vdir = tmp_path / "verifications"
    signers = {"this-host@example.invalid": candidate.keys / "this-host"}
    for path in candidate.real_reports.values():
        dest = vdir / candidate.tag / path.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, dest)
        shutil.copy(str(path) + ".sig", str(dest) + ".sig")
    for i in range(3):
        name = f"pi-{i}"
        key = keypair(candidate.keys, f"{name}-{secrets.token_hex(2)}")
        signers[f"{name}@example.invalid"] = key
        for platform in ARM:
            write_signed(vdir, make_report(candidate.index, platform, name, tag=candidate.tag), key)
    allowed_signers(vdir / "allowed_signers", signers)
    keys = {name.split("@")[0]: key for name, key in signers.items()}
    yield candidate.cfg.with_overrides(verifications_dir=vdir), vdir, keys


def _promote_fails(cfg: config.ReleaseConfig, tag: str, match: str) -> None:
    version = f"0.0.{secrets.randbelow(10**6)}"
    with pytest.raises(ReleaseError, match=match):
        promote.promote(cfg, tag, version=version)
    assert not imagetools.exists(cfg.image(version)), "a failed promotion created a tag"


def test_promote_with_quorum(candidate: Candidate, evidence, capsys) -> None:  # type: ignore[no-untyped-def]
    cfg, _, _ = evidence
    version = f"0.0.{secrets.randbelow(10**6)}"
    promote.promote(cfg, candidate.tag, version=version, latest=True)
    out = capsys.readouterr().out
    assert "emulated, not counted" in out and "FAIL" not in out
    for tag in (version, "latest"):
        released = imagetools.index(cfg.image(tag))
        assert {p: d.digest for p, d in released.images.items()} == {
            p: d.digest for p, d in candidate.index.images.items()
        }
    promote.promote(cfg, candidate.tag, version=version)  # idempotent


def test_tampered_report(candidate: Candidate, evidence) -> None:  # type: ignore[no-untyped-def]
    cfg, vdir, _keys = evidence
    path = sorted((vdir / candidate.tag).glob("*-arm64.json"))[0]
    data = _report(path)
    data["tests"]["passed"] += 100
    path.write_text(json.dumps(data))
    _promote_fails(cfg, candidate.tag, rf"{path.name} rejected: .*tampered")


def test_signer_not_allowed(candidate: Candidate, evidence) -> None:  # type: ignore[no-untyped-def]
    cfg, vdir, _keys = evidence
    stranger = keypair(candidate.keys, f"stranger-{secrets.token_hex(2)}")
    path = write_signed(
        vdir, make_report(candidate.index, "linux/arm64", "stranger", tag=candidate.tag), stranger
    )
    _promote_fails(cfg, candidate.tag, rf"{path.name} rejected: .*signer not allowed")


def test_digest_not_matching_candidate(candidate: Candidate, evidence) -> None:  # type: ignore[no-untyped-def]
    cfg, vdir, keys = evidence
    path = sorted((vdir / candidate.tag).glob("*-armv7.json"))[0]
    data = _report(path)
    data["platform_digest"] = "sha256:" + "0" * 64
    _resign(path, data, keys["pi-0"])
    _promote_fails(
        cfg, candidate.tag, r"linux/arm/v7 digest sha256:0+ does not match the candidate's"
    )


def _resign(path: Path, data: dict, key: Path) -> None:  # type: ignore[type-arg]
    from ci.release import reports, signing

    path.write_bytes(reports.dumps(data))
    signing.sign(path, str(key))


def test_two_reports_from_the_same_machine(candidate: Candidate, evidence) -> None:  # type: ignore[no-untyped-def]
    cfg, vdir, keys = evidence
    victim = next(
        p
        for p in (vdir / candidate.tag).glob("*-arm64.json")
        if _report(p)["machine"]["cpu_model"] == "cpu of pi-2"
    )
    data = make_report(candidate.index, "linux/arm64", "pi-1", tag=candidate.tag, duration_s=99.0)
    _resign(victim, data, keys["pi-1"])
    _promote_fails(
        cfg,
        candidate.tag,
        r"linux/arm64: 2 distinct real machine\(s\) passed, "
        r"need 3.*come from the same machine",
    )


def test_emulated_report_offered_as_real_hardware(candidate: Candidate, evidence) -> None:  # type: ignore[no-untyped-def]
    cfg, vdir, keys = evidence
    path = vdir / candidate.tag / candidate.real_reports["linux/arm64"].name
    data = _report(path)
    data["emulation"] = {"emulated": False, "evidence": []}
    _resign(path, data, keys["this-host"])
    _promote_fails(cfg, candidate.tag, "emulated report offered as real hardware")


def test_missing_platform_in_manifest_list(candidate: Candidate, evidence) -> None:  # type: ignore[no-untyped-def]
    cfg, _, _ = evidence
    partial = f"{candidate.tag}-partial"
    digests = [candidate.index.images[p].digest for p in project.platforms()[:2]]
    promote.create(cfg, partial, digests, dry=False)
    missing = project.platforms()[2]
    with pytest.raises(ReleaseError, match=f"missing platform {missing}"):
        promote.inspect(cfg, partial, check=True)
    _promote_fails(cfg, partial, f"missing platform {missing}")
    proc = subprocess.run(
        [sys.executable, "-m", "invoke", "manifest", partial, "--check"],
        cwd=project.ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**_env(), "CLICKVOTE_REPOSITORY": cfg.repository},
    )
    assert proc.returncode == 1 and f"missing platform {missing}" in proc.stderr


def _env() -> dict[str, str]:
    return dict(os.environ)
