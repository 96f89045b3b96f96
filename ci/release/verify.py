"""``inv verify TAG``: test one platform of a candidate on this machine, write a signed report.

What runs: the smoke test (always) and, when the candidate's test image
(``<test repository>:<tag>``) exists for the platform, its pytest suite (the
tests not marked ``host``). ``--suite smoke`` skips pytest (such a report does not
count toward promotion where a test image exists), ``--suite full`` requires it.
Then the candidate's platform image is rebuilt from the commit its provenance names
(``ci/release/rebuild.py``) and the report's ``rebuild`` section says whether the rebuild
gave the digest pulled; ``no_rebuild`` (``--no-rebuild REASON``) records the reason instead.
"""

from __future__ import annotations

import io
import os
import re
import tarfile
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ci import project, shell
from ci.release import (
    ReleaseError,
    container,
    engine,
    figures,
    imagetools,
    machine,
    rebuild,
    reports,
    signers,
    signing,
)
from ci.release.config import ReleaseConfig
from ci.release.oci import Index
from ci.release.smoke import Smoke, free_port

PYTEST_TIMEOUT = 3600.0
SUITES = ("auto", "smoke", "full")


def smoke_timeout(emulated_guess: bool) -> float:
    return 240.0 if emulated_guess else 60.0


def resolve(cfg: ReleaseConfig, tag: str, platform: str) -> tuple[Index, str]:
    idx = imagetools.index(cfg.image(tag))
    image = idx.images.get(platform)
    if image is None:
        raise ReleaseError(
            f"{cfg.image(tag)} has no {platform} image (it has {', '.join(idx.images) or 'none'})"
        )
    return idx, image.digest


def test_image_digest(cfg: ReleaseConfig, tag: str, platform: str) -> str | None:
    ref = cfg.image(tag, test=True)
    if not imagetools.exists(ref):
        return None
    image = imagetools.index(ref).images.get(platform)
    return image.digest if image else None


def parse_junit(xml_text: str) -> dict[str, int]:
    root = ET.fromstring(xml_text)
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    total = {
        k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")
    }
    passed = total["tests"] - total["failures"] - total["errors"] - total["skipped"]
    return {
        "passed": passed,
        "failed": total["failures"],
        "errors": total["errors"],
        "skipped": total["skipped"],
    }


def run_pytest(cfg: ReleaseConfig, digest: str, platform: str) -> dict[str, Any]:
    """The test image's own suite; counts from its JUnit XML, copied out of the container
    (no bind mount: inside the verifier container, paths would be the host's)."""
    ref = cfg.image(digest, test=True)
    container.pull(ref, platform)
    name = f"clickvote-verify-pytest-{os.urandom(4).hex()}"
    cmd = ["docker", "run", "--name", name, *project.platform_args(platform), "--network", "host"]
    cmd += [ref]
    cmd += ["python3", "-m", "pytest", "-p", "no:cacheprovider", "-m", "not host", "-q"]
    cmd += [f"--junitxml={JUNIT}"]
    shell.show(cmd, dry=False)
    t0 = time.monotonic()
    try:
        proc = shell.run(cmd, timeout=PYTEST_TIMEOUT, check=False)
        copied = shell.run(["docker", "cp", f"{name}:{JUNIT}", "-"], check=False)
    finally:
        shell.run(["docker", "rm", "-f", name], check=False)
    junit = _untar_one(copied.stdout) if copied.returncode == 0 else None
    if junit is None:
        tail = (proc.stdout + proc.stderr).decode(errors="replace")[-1500:]
        raise ReleaseError(f"pytest in {ref} wrote no report (exit {proc.returncode}):\n{tail}")
    counts = parse_junit(junit)
    shell.echo(proc.stdout.decode(errors="replace")[-600:])
    return {
        **counts,
        "exit_code": proc.returncode,
        "seconds": round(time.monotonic() - t0, 1),
        "image_digest": digest,
    }


JUNIT = "/tmp/clickvote-junit.xml"


def _untar_one(data: bytes) -> str | None:
    """The one file of a ``docker cp ... -`` tar stream."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            member = next((m for m in tar.getmembers() if m.isfile()), None)
            f = tar.extractfile(member) if member else None
            return f.read().decode() if f else None
    except tarfile.TarError:
        return None


def run_smoke(
    cfg: ReleaseConfig, digest: str, platform: str, timeout: float
) -> tuple[Smoke, dict[str, Any]]:
    """Serve from the app image, vote, restart on the same volume, check the totals."""
    ref = cfg.image(digest)
    container.pull(ref, platform)
    config = container.image_config(ref)
    data = next(iter(config.get("Volumes") or {}), "/data")
    smoke = Smoke(port=free_port(), timeout=timeout)
    c = container.Container(ref, platform, volumes={container.create_volume(): data})
    facts: dict[str, Any] = {}
    try:
        c.start(
            container.command_for(
                config,
                "clickvote",
                ["serve", "--host", "127.0.0.1", "--port", str(smoke.port), "--data-dir", data],
            )
        )
        smoke.step("healthz", lambda: smoke.wait_healthy(c.running))
        facts = _container_facts(c)
        smoke.step("register and create a vote group", smoke.register)
        smoke.step("vote over Socket.IO", smoke.vote)
        smoke.step("restart on the same volume", lambda: _restart(c, smoke))
        smoke.step("totals survived the restart", smoke.totals_survived)
        if not smoke.ok:
            shell.echo(f"container log ({c.name}):\n{c.logs()}")
    finally:
        c.remove()
    return smoke, facts


def run_figures(cfg: ReleaseConfig, digest: str, platform: str, timeout: float) -> dict[str, Any]:
    """The figures of ci/release/figures.py; a failure to measure is recorded, not fatal."""
    ref = cfg.image(digest)
    try:
        return figures.measure(ref, platform, container.image_config(ref), timeout)
    except (ReleaseError, OSError, RuntimeError, ValueError) as e:
        shell.echo(f"warning: figures not measured: {e}")
        return {"error": str(e)[:500]}


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return ""


def _restart(c: container.Container, smoke: Smoke) -> str:
    c.restart()
    return smoke.wait_healthy(c.running)


def _container_facts(c: container.Container) -> dict[str, Any]:
    uname, cpuinfo = container.probe(c)
    return {
        "machine": uname,
        "cpu_family": machine.cpuinfo_family(cpuinfo),
        "cpu_model": machine.cpu_model(cpuinfo),
        "process_exe": c.process_exe(),
    }


def tests_section(suite: str, pytest: dict[str, Any] | None, smoke: Smoke) -> dict[str, Any]:
    smoke_passed = sum(ch.ok for ch in smoke.checks)
    smoke_failed = len(smoke.checks) - smoke_passed
    p = pytest or {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    return {
        "suite": suite,
        "passed": p["passed"] + smoke_passed,
        "failed": p["failed"] + p["errors"] + smoke_failed,
        "skipped": p["skipped"],
        "pytest": pytest,
        "smoke": [asdict(ch) for ch in smoke.checks],
    }


def qemu_version() -> str | None:
    for binary in ("qemu-aarch64-static", "qemu-aarch64", "qemu-arm-static"):
        proc = shell.run([binary, "--version"], check=False) if _which(binary) else None
        if proc and proc.returncode == 0:
            m = re.search(r"version (\S+)", proc.stdout.decode())
            return m.group(1) if m else None
    return None


def _which(binary: str) -> bool:
    import shutil

    return shutil.which(binary) is not None


def docker_version() -> str:
    proc = shell.run(["docker", "version", "--format", "{{.Server.Version}}"], check=False)
    return proc.stdout.decode().strip() or "unknown"


def choose_suite(suite: str, test_digest: str | None) -> str:
    if suite not in SUITES:
        raise ReleaseError(f"--suite must be one of {', '.join(SUITES)}, not {suite!r}")
    if suite == "full" and test_digest is None:
        raise ReleaseError(
            "--suite full needs the candidate's test image for this platform, "
            "and there is none (publish it with the candidate)"
        )
    return "pytest+smoke" if suite != "smoke" and test_digest else "smoke"


def verify(
    cfg: ReleaseConfig,
    tag: str,
    *,
    platform: str = "",
    suite: str = "auto",
    key: str = "",
    no_rebuild: str = "",
    dry: bool = False,
) -> Path | None:
    reports.check_tag(tag)
    info = engine.docker_json("info")
    platform = platform or engine.platform_of(
        engine.docker_json("version"), info, project.platforms()
    )
    host = engine.host(info, _cpuinfo())
    key = key or cfg.signing_key or signing.default_key()
    if not dry and not (key and Path(os.path.expanduser(key)).exists()):
        raise ReleaseError(
            f"no SSH signing key {key!r}: pass --key or set "
            "CLICKVOTE_SIGNING_KEY (ssh-keygen -t ed25519 creates one)"
        )
    idx, digest = resolve(cfg, tag, platform)
    test_digest = test_image_digest(cfg, tag, platform)
    chosen = choose_suite(suite, test_digest)
    if chosen == "smoke" and test_digest:
        print("note: this report will not count toward promotion: the candidate has a test image")
    path = reports.report_path(cfg.verifications_dir, tag, host.fingerprint, platform)
    signer = "" if dry else signing.key_fingerprint(key)
    print(f"verifying {cfg.image(tag)} {platform} ({digest}) with {chosen} -> {path}")
    print(f"no rebuild: {no_rebuild}" if no_rebuild else "then rebuilding it from its commit")
    if dry:
        return None
    started, t0 = time.time(), time.monotonic()
    native = machine.ACCEPTED_MACHINES.get(platform, frozenset()) & machine.NATIVE.get(
        host.machine, frozenset()
    )
    pytest = (
        run_pytest(cfg, test_digest, platform) if chosen == "pytest+smoke" and test_digest else None
    )
    smoke, facts = run_smoke(cfg, digest, platform, smoke_timeout(not native))
    measured = run_figures(cfg, digest, platform, smoke_timeout(not native))
    rebuilt = (
        rebuild.not_rebuilt(no_rebuild) if no_rebuild else rebuild.run(cfg, tag, platform, digest)
    )
    report = build_report(
        cfg,
        tag,
        idx,
        platform,
        digest,
        host,
        signer,
        facts,
        tests_section(chosen, pytest, smoke),
        started,
        time.monotonic() - t0,
        measured,
        rebuilt,
    )
    write_signed(path, report, key)
    summary(report, path)
    if report["result"] != "pass":
        raise ReleaseError(f"verification failed on {platform}; report: {path}")
    return path


def build_report(
    cfg: ReleaseConfig,
    tag: str,
    idx: Index,
    platform: str,
    digest: str,
    host: machine.Host,
    signer: str,
    facts: dict[str, Any],
    tests: dict[str, Any],
    started: float,
    seconds: float,
    measured: dict[str, Any] | None = None,
    rebuilt: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The report; ``rebuilt``: its ``rebuild`` section (``ci/release/rebuild.py``)."""
    emulation = machine.detect_emulation(
        host.machine,
        facts.get("machine", "unknown"),
        facts.get("cpu_family"),
        facts.get("process_exe"),
        [v.split(" (")[0] for v in host.binfmt.values()],
    )
    passed = tests["failed"] == 0 and bool(facts) and tests["passed"] > 0
    return {
        "schema": reports.SCHEMA,
        "kind": reports.KIND,
        "repository": cfg.repository,
        "tag": tag,
        "index_digest": idx.digest,
        "platform": platform,
        "platform_digest": digest,
        "result": "pass" if passed else "fail",
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "duration_s": round(seconds, 1),
        "signer": signer,  # fingerprint of the key that signs: promotion checks it
        "machine": {
            "fingerprint": host.fingerprint,
            "host_machine": host.machine,
            "cpu_model": host.cpu_model,
            "kernel": host.kernel,
            "os": host.os,
            "binfmt": host.binfmt,
            "model": host.model,
            "cpus": host.cpus,
            "memory_mb": host.memory_mb,
        },
        "container": {
            "machine": facts.get("machine", "unknown"),
            **{k: facts.get(k) for k in ("cpu_family", "cpu_model", "process_exe")},
        },
        "emulation": {
            "emulated": emulation.emulated,
            "evidence": emulation.evidence,
            "qemu_version": qemu_version() if emulation.emulated else None,
        },
        "tests": tests,
        "figures": {**(measured or {"error": "not measured"}), "emulated": emulation.emulated},
        "tools": {"docker": docker_version()},
        "rebuild": rebuilt or rebuild.not_rebuilt("not attempted"),
    }


def write_signed(path: Path, report: dict[str, Any], key: str) -> None:
    """Sign ``report`` as it is now: its ``signed_at`` is the time the keys' validity
    windows and the revocation list are judged at."""
    path.parent.mkdir(parents=True, exist_ok=True)
    report["signed_at"] = signers.iso(datetime.now(UTC))
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(reports.dumps(report))
    tmp.replace(path)
    signing.sign(path, key)


def summary(report: dict[str, Any], path: Path) -> None:
    t, e = report["tests"], report["emulation"]
    print(
        f"{report['result'].upper()}: {report['platform']} on {report['machine']['cpu_model']}"
        f" ({'emulated' if e['emulated'] else 'native'}); {t['passed']} passed, "
        f"{t['failed']} failed, {t['skipped']} skipped in {report['duration_s']}s"
    )
    for ev in e["evidence"]:
        print(f"  emulation evidence: {ev}")
    print(rebuild_line(report))
    print(figures.table([report]))
    print(f"report: {path}\nsignature: {reports.signature_path(path)}")


def rebuild_line(report: dict[str, Any]) -> str:
    r, pulled = report.get("rebuild") or {}, report["platform_digest"]
    if not r.get("rebuilt"):
        return f"pulled {pulled}; not rebuilt: {r.get('reason') or 'no reason given'}"
    same = "equal" if r.get("equal") else "NOT EQUAL"
    return f"pulled {pulled}; rebuilt {r['rebuilt_digest']} from {r['commit'][:12]}: {same}"
