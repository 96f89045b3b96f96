"""The whole release flow against the local registry (127.0.0.1 only).

One candidate is published per session into a separate test repository (the
build is cached after the first run). ARM machines are simulated by reports
signed with throwaway SSH keys; the emulated runs on this x86_64 host are real.
"""

from __future__ import annotations

import json
import os
import platform as host_machine
import re
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ci import build as images
from ci import project
from ci.release import (
    ReleaseError,
    config,
    device,
    imagetools,
    machine,
    promote,
    publish,
    rebuild,
    registry,
    signing,
)
from ci.release import verify as verify_mod
from ci.release.oci import Index
from clickvote.client import free_port

from . import image_files
from .factories import allowed_signers, keypair, make_report, write_signed

pytestmark = pytest.mark.host
ARM = [p for p in project.platforms() if p != "linux/amd64"]
# The one-command device verification runs the whole in-image suite plus a minute of figures:
# natively, and under QEMU for a Raspberry Pi's two platforms (64-bit and 32-bit ARM). The
# other platforms' suites run in `nox -s test-<arch>`.
DEVICE_PLATFORMS = [
    p for p in project.platforms() if p in ("linux/amd64", "linux/arm64", "linux/arm/v7")
]


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
    test_images: dict[str, str]  # platform -> digest of the candidate's test image


@pytest.fixture(scope="session")
def cfg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[config.ReleaseConfig]:
    """This run's own registry (a free port on 127.0.0.1, a fresh data directory) and
    repositories (named per run), so runs from two checkouts at once never meet; at the end
    the registry stops and its data and the images this run tagged for it go."""
    if not _docker_ok():
        pytest.fail("no Docker engine answers: run `inv setup`")
    cfg = run_config(tmp_path_factory.mktemp("registry"))
    # the flow, not this machine's mirror: roots debootstrapped today may differ from the record
    strict = os.environ.get(publish.BASE_STRICT)
    os.environ[publish.BASE_STRICT] = "0"
    print(registry.start(cfg))
    try:
        yield cfg
    finally:
        if strict is None:
            os.environ.pop(publish.BASE_STRICT, None)
        else:
            os.environ[publish.BASE_STRICT] = strict
        print(registry.stop(cfg))
        remove_local_images(cfg.registry)
        shutil.rmtree(cfg.state_dir, ignore_errors=True)


def run_config(state_dir: Path) -> config.ReleaseConfig:
    """The release configuration of one test run: registry, repositories, state apart."""
    run = secrets.token_hex(4)
    return config.load({}, environ={}).with_overrides(
        registry=f"127.0.0.1:{free_port()}",
        repository=f"clickvote-release-test-{run}",
        test_repository=f"clickvote-release-test-{run}-tests",
        state_dir=state_dir,
    )


def remove_local_images(registry_addr: str) -> None:
    """The engine's images named after the registry (the docker driver keeps what it pushes)."""
    listed = subprocess.run(
        ["docker", "images", "--format", "{{.Repository}} {{.Tag}} {{.ID}}"],
        capture_output=True, text=True, timeout=120,
    ).stdout.split("\n")  # fmt: skip
    mine = [line.split() for line in listed if line.startswith(f"{registry_addr}/")]
    refs = [f"{repo}:{tag}" if tag != "<none>" else image_id for repo, tag, image_id in mine]
    if refs:
        subprocess.run(["docker", "rmi", "--force", *refs], capture_output=True, timeout=600)


@pytest.fixture(scope="session")
def published(cfg: config.ReleaseConfig) -> tuple[str, Index]:
    """A candidate tag in the local registry and its index."""
    tag = publish.publish(cfg, with_test=True)
    return tag, imagetools.index(cfg.image(tag))


@pytest.fixture(scope="session")
def candidate(
    cfg: config.ReleaseConfig,
    published: tuple[str, Index],
    tmp_path_factory: pytest.TempPathFactory,
) -> Candidate:
    tag, index = published
    keys = tmp_path_factory.mktemp("keys")
    local = keypair(keys, "this-host")
    work = cfg.with_overrides(verifications_dir=tmp_path_factory.mktemp("verify"))
    reports: dict[str, Path] = {}
    # amd64 natively with the test image's suite and a rebuild of the candidate's commit; ARM
    # emulated (listed, never counted), not rebuilt (`inv build --reproducible-check` is theirs)
    for platform, suite in [("linux/amd64", "full"), *[(p, "smoke") for p in ARM]]:
        no_rebuild = "" if platform == "linux/amd64" else "emulated on the test host"
        try:
            path = verify_mod.verify(
                work, tag, platform=platform, suite=suite, key=str(local), no_rebuild=no_rebuild
            )
        except ReleaseError as e:  # the app's own tests may fail; the report still exists
            print(f"verify {platform}: {e}", file=sys.stderr)
            path = Path(str(e).rsplit("report: ", 1)[-1])
        assert path is not None
        reports[platform] = path
    return Candidate(cfg, tag, index, keys, reports, promote.test_images(cfg, tag))


def test_registry_start_is_idempotent(cfg: config.ReleaseConfig) -> None:
    assert "running" in registry.start(cfg) or "answers" in registry.start(cfg)
    assert registry.answers(cfg)


def test_two_runs_have_registries_apart(cfg: config.ReleaseConfig, tmp_path: Path) -> None:
    """Another run beside this one (another checkout) gets its own registry and
    repositories; stopping it leaves this run's registry answering."""
    assert cfg.registry != config.LOCAL_REGISTRY and project.ROOT not in cfg.state_dir.parents
    other = run_config(tmp_path / "registry")
    assert other.registry != cfg.registry and other.repository != cfg.repository
    print(registry.start(other))
    try:
        assert registry.answers(other) and registry.answers(cfg)
    finally:
        print(registry.stop(other))
    assert not registry.answers(other) and registry.answers(cfg)


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


def test_native_verification_with_the_test_image(candidate: Candidate) -> None:
    """`--suite full` runs the candidate's test image; its counts land in the report,
    which names the key that signed it."""
    r = _report(candidate.real_reports["linux/amd64"])
    assert r["tests"]["suite"] == "pytest+smoke" and r["tests"]["pytest"]["passed"] > 0
    assert r["tests"]["passed"] >= r["tests"]["pytest"]["passed"]
    assert r["tests"]["pytest"]["image_digest"] == candidate.test_images["linux/amd64"]
    assert r["signer"] == signing.key_fingerprint(str(candidate.keys / "this-host"))


def test_native_verification(candidate: Candidate) -> None:
    r = _report(candidate.real_reports["linux/amd64"])
    assert r["emulation"]["emulated"] is False, r["emulation"]
    assert r["container"]["machine"] == "x86_64"
    assert r["index_digest"] == candidate.index.digest
    assert r["platform_digest"] == candidate.index.images["linux/amd64"].digest
    assert r["result"] == "pass", r["tests"]
    assert [c["ok"] for c in r["tests"]["smoke"]] == [True] * 5


def test_native_verification_rebuilt_the_candidate(candidate: Candidate) -> None:
    """`inv verify` rebuilt amd64 from the commit the candidate's provenance names (the one
    published from) and got the digest the registry serves: publish pushes what a
    reproducible build gives."""
    r = _report(candidate.real_reports["linux/amd64"])
    pulled = candidate.index.images["linux/amd64"].digest
    labels = imagetools.image_config(candidate.cfg.image(pulled))["config"]["Labels"]
    published_from = labels["org.opencontainers.image.revision"]  # HEAD when published
    assert r["rebuild"] == {
        "rebuilt": True, "commit": published_from, "pulled": pulled, "rebuilt_digest": pulled,
        "equal": True,
    }, r["rebuild"]  # fmt: skip
    assert _report(candidate.real_reports[ARM[0]])["rebuild"] == {
        "rebuilt": False,
        "reason": "emulated on the test host",
    }


@pytest.mark.parametrize("platform", ARM)
def test_emulated_runs_are_detected(candidate: Candidate, platform: str) -> None:
    if project.runs_natively(platform, host_machine.machine()):
        pytest.skip("this host runs the platform natively (linux/386 on x86_64 too)")
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
            report = make_report(
                candidate.index,
                platform,
                name,
                tag=candidate.tag,
                test_image=candidate.test_images[platform],
            )
            write_signed(vdir, report, key)
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
    assert "machine facts in a report are its signer's claims" in out
    for tag in (version, "latest"):
        released = imagetools.index(cfg.image(tag))
        assert {p: d.digest for p, d in released.images.items()} == {
            p: d.digest for p, d in candidate.index.images.items()
        }
    promote.promote(cfg, candidate.tag, version=version)  # idempotent


def test_promote_where_rebuilds_are_required(candidate: Candidate, evidence, capsys) -> None:  # type: ignore[no-untyped-def]
    """amd64 requires a matching rebuild: this host's report has one and counts; re-signed
    with another rebuilt digest, it never counts and blocks the promotion."""
    cfg, vdir, keys = evidence
    cfg = cfg.with_overrides(require_rebuild=("linux/amd64",))
    promote.promote(cfg, candidate.tag, version="0.0.1", dry=True)
    assert "counts, rebuild matched" in capsys.readouterr().out
    path = vdir / candidate.tag / candidate.real_reports["linux/amd64"].name
    data = _report(path)
    data["rebuild"] |= {"rebuilt_digest": "sha256:" + "e" * 64, "equal": False}
    _resign(path, data, keys["this-host"])
    with pytest.raises(ReleaseError, match="not what its commit builds"):
        promote.promote(cfg, candidate.tag, version="0.0.1", dry=True)
    assert "not counted: rebuilt sha256:eeee" in capsys.readouterr().out


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
    from ci.release import reports

    data["signer"] = signing.key_fingerprint(str(key))
    path.write_bytes(reports.dumps(data))
    signing.sign(path, str(key))


def test_two_reports_from_the_same_machine(candidate: Candidate, evidence) -> None:  # type: ignore[no-untyped-def]
    cfg, vdir, keys = evidence
    victim = next(
        p
        for p in (vdir / candidate.tag).glob("*-arm64.json")
        if _report(p)["machine"]["cpu_model"] == "cpu of pi-2"
    )
    data = make_report(
        candidate.index,
        "linux/arm64",
        "pi-1",
        tag=candidate.tag,
        test_image=candidate.test_images["linux/arm64"],
        duration_s=99.0,
    )
    _resign(victim, data, keys["pi-1"])
    _promote_fails(
        cfg,
        candidate.tag,
        r"linux/arm64: 2 distinct signer\(s\) on distinct machines passed, need 3.*"
        r"are signed by pi-1@example.invalid",
    )


def test_one_key_with_three_fabricated_machines(candidate: Candidate, evidence) -> None:  # type: ignore[no-untyped-def]
    """Machine facts are the signer's word: pi-0's key alone reports three Raspberry Pis."""
    cfg, vdir, keys = evidence
    for path in (vdir / candidate.tag).glob("*-arm*.json"):
        path.unlink()
        Path(f"{path}.sig").unlink()
    for platform in ARM:
        for n in range(3):
            report = make_report(
                candidate.index,
                platform,
                f"fake-pi-{n}",
                tag=candidate.tag,
                test_image=candidate.test_images[platform],
                machine__cpu_model="Raspberry Pi 4 Model B Rev 1.4",
            )
            write_signed(vdir, report, keys["pi-0"])
    _promote_fails(
        cfg, candidate.tag, r"linux/arm64: 1 distinct signer\(s\) on distinct machines passed"
    )


def test_smoke_only_reports_do_not_count(candidate: Candidate, evidence) -> None:  # type: ignore[no-untyped-def]
    cfg, vdir, keys = evidence
    for path in (vdir / candidate.tag).glob("*-armv7.json"):
        data = _report(path)
        if data["emulation"]["emulated"]:
            continue
        data["tests"] = {"suite": "smoke", "passed": 5, "failed": 0, "skipped": 0, "smoke": []}
        _resign(path, data, keys[data["machine"]["cpu_model"].removeprefix("cpu of ")])
    _promote_fails(cfg, candidate.tag, r"linux/arm/v7: 0 distinct signer.*3 smoke-only report")


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
        env={
            **_env(),
            "CLICKVOTE_REGISTRY": cfg.registry,
            "CLICKVOTE_REPOSITORY": cfg.repository,
            "CLICKVOTE_TEST_REPOSITORY": cfg.test_repository,
            "CLICKVOTE_STATE_DIR": str(cfg.state_dir),
        },
    )
    assert proc.returncode == 1 and f"missing platform {missing}" in proc.stderr


def test_per_platform_pushes_by_digest_merge_into_one_candidate(
    cfg: config.ReleaseConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As CI does it, for two platforms (native here): each pushed on its own by digest, no
    tag, then one candidate of them (merge checks it as `inv manifest --check` does). The
    registry holds the candidate's tags and nothing else, the candidate's index the digests
    the jobs wrote, and what the amd64 job pushed is what a rebuild of its commit gives."""
    two = [p for p in project.platforms() if p in ("linux/amd64", "linux/386")]
    run = cfg.with_overrides(
        repository=f"{cfg.repository}-bydigest", test_repository=f"{cfg.repository}-bydigest-t"
    )
    publish.sbom_generator(run, publish.build_env()[1], dry=False)  # for every platform
    monkeypatch.setattr(project, "platforms", lambda: two)
    tag = "0.0.1-rc.1"
    for platform in two:
        publish.publish(run, tag=tag, platform=platform, digest_dir=tmp_path / "digests")
    assert imagetools.list_tags(run) == imagetools.list_tags(run, test=True) == []
    publish.merge(run, tag, tmp_path / "digests")
    assert imagetools.list_tags(run) == imagetools.list_tags(run, test=True) == [tag]
    for target, test in (("app", False), ("test", True)):
        idx = imagetools.index(run.image(tag, test=test))
        assert list(idx.images) == two and len(idx.attestations) == len(two)
        for p in two:
            wrote = (tmp_path / "digests" / f"{target}-{project.arch_name(p)}.digest").read_text()
            job = imagetools.index(run.image(wrote.strip(), test=test))
            assert imagetools.digest(run.image(wrote.strip(), test=test)) == wrote.strip()
            assert idx.images[p].digest == job.images[p].digest
            assert {a.digest for a in job.attestations} <= {a.digest for a in idx.attestations}
    # a base named by tag is pinned to the digest the registry serves for it (publish.pin_base)
    pinned = publish.pin_base(run.image(tag), dry=False)
    assert images.is_pinned(pinned) and pinned.startswith(run.image(tag) + "@sha256:")
    assert imagetools.index(pinned).images == imagetools.index(run.image(tag)).images
    amd64 = imagetools.index(run.image(tag)).images["linux/amd64"].digest
    prov = rebuild.candidate_provenance(run, tag)
    commit = rebuild.provenance_commit(prov, "linux/amd64")
    # the base publish built on, as BuildKit's provenance records it: the offline base (local,
    # so the rebuild resolves it as publish did), or a registry base pinned by digest
    recorded = rebuild.provenance_base(prov, "linux/amd64")
    assert recorded == project.local_base_image() or images.is_pinned(recorded or "")
    assert rebuild.build(commit, "linux/amd64", tmp_path / "rebuild") == amd64


def _env() -> dict[str, str]:
    return dict(os.environ)


# --- SBOM ---------------------------------------------------------------------------------


@pytest.mark.parametrize("platform", project.platforms())
def test_sbom_lists_every_package_in_the_image(
    cfg: config.ReleaseConfig, published: tuple[str, Index], platform: str
) -> None:
    """Every shared library in the image belongs to a Debian package its SBOM lists
    (libpq5 and the libraries it pulls in are unpacked by the Dockerfile, not installed)."""
    _, index = published
    repo = image_files.Repo(cfg.registry, cfg.repository)
    listed = image_files.deb_names(image_files.sbom_packages(repo, index, platform))
    fs = image_files.rootfs(repo, index.images[platform].digest)
    owner = image_files.owners(fs)
    assert "libpq5" in listed and "libc6" in listed, sorted(listed)
    libraries = [p for p in fs.files if p.startswith("usr/lib/") and re.search(r"\.so(\.\d+)*$", p)]
    assert any("libpq.so" in p for p in libraries)
    unlisted = sorted(
        f"{p} ({owner.get(p, 'no package')})" for p in libraries if owner.get(p) not in listed
    )
    assert not unlisted, f"{platform}: libraries of packages missing from the SBOM: {unlisted}"
    installed = {
        p.rsplit("/", 1)[1][: -len(".list")].split(":")[0]
        for p in fs.contents
        if p.endswith(".list")
    }
    assert installed <= listed, sorted(installed - listed)


# --- verification with Docker alone (the test image's `verify`) ---------------------------


@pytest.fixture(scope="session")
def device_runs(
    cfg: config.ReleaseConfig,
    published: tuple[str, Index],
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, tuple[subprocess.CompletedProcess[str], Path, Path]]:
    """The documented one-command run per platform: natively for this host's own (the
    engine picks it), under QEMU for the others (--platform). The key belongs to another
    user than the container's root, /out to a third, as on a device."""
    tag, _ = published
    keys = tmp_path_factory.mktemp("device-keys")
    key = keypair(keys, "device")
    os.chown(key, 1000, 1000)
    runs = {}
    for platform in DEVICE_PLATFORMS:
        out = tmp_path_factory.mktemp(f"device-out-{project.arch_name(platform)}")
        os.chown(out, 12345, 12345)
        cmd = ["docker", "run", "--rm", "--network", "host", "-u", "0"]
        cmd += ["-v", "/var/run/docker.sock:/var/run/docker.sock"]
        cmd += ["-v", f"{keys}:/keys:ro", "-v", f"{out}:/out", cfg.image(tag, test=True)]
        cmd += ["verify", "--key", "/keys/device"]
        if platform != machine.host_platform():
            cmd += ["--platform", platform]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
        print(f"$ {' '.join(cmd)}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}", file=sys.stderr)
        runs[platform] = (proc, out, key)
    return runs


@pytest.mark.parametrize("platform", DEVICE_PLATFORMS)
def test_one_command_device_verification(
    device_runs: dict[str, tuple[subprocess.CompletedProcess[str], Path, Path]],
    published: tuple[str, Index],
    cfg: config.ReleaseConfig,
    platform: str,
) -> None:
    tag, index = published
    proc, out, key = device_runs[platform]
    assert proc.returncode == 0, proc.stderr[-2000:]
    (path,) = (out / "verifications" / tag).glob(f"*-{project.arch_name(platform)}.json")
    allowed = allowed_signers(out / "allowed", {"device@example.invalid": key})
    assert signing.verify(path, allowed).ok
    assert path.stat().st_uid == 12345 and Path(f"{path}.sig").stat().st_uid == 12345
    r = _report(path)
    emulated = platform != machine.host_platform()
    assert r["platform"] == platform and r["result"] == "pass", r["tests"]
    assert r["platform_digest"] == index.images[platform].digest
    assert r["tests"]["pytest"]["image_digest"] == promote.test_images(cfg, tag)[platform]
    assert r["tests"]["pytest"]["passed"] > 0 and r["tests"]["pytest"]["failed"] == 0
    assert r["emulation"]["emulated"] is emulated, r["emulation"]
    f = r["figures"]
    assert f["emulated"] is emulated and "error" not in f, f
    assert f["votes_per_s"] > 0 and f["cpu_ms_per_vote"] > 0 and f["load"]["errors"] == 0
    assert 10 < f["idle_rss_mb"] < 1000 and 0 < f["serve_to_healthz_s"] < 240
    assert r["machine"]["model"] and r["machine"]["cpus"] > 0
    assert r["rebuild"] == {"rebuilt": False, "reason": device.NO_REBUILD}


def test_promote_dry_shows_the_device_figures(
    device_runs: dict[str, tuple[subprocess.CompletedProcess[str], Path, Path]],
    published: tuple[str, Index],
    cfg: config.ReleaseConfig,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Reports where the one command put them are what promote reads (--out); the emulated
    arm64 one shows its figures, marked emulated, and is not counted."""
    tag, _ = published
    runs = list(device_runs.values())
    vdir = runs[0][1] / "verifications"
    for _, out, _ in runs[1:]:
        for p in (out / "verifications" / tag).iterdir():
            shutil.copy(p, vdir / tag / p.name)
    allowed_signers(vdir / "allowed_signers", {"device@example.invalid": runs[0][2]})
    with pytest.raises(ReleaseError, match="need 3"):
        promote.promote(cfg.with_overrides(verifications_dir=vdir), tag, version="0.0.1", dry=True)
    printed = capsys.readouterr().out
    arm64 = next(
        line for line in printed.splitlines() if re.match(r"linux/arm64 .*emulated$", line)
    )
    assert re.search(r"\d[\d,]*\.\d", arm64), arm64
    assert "emulated, not counted" in printed
