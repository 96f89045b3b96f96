"""Builders for manifest lists, verification reports and throwaway SSH keys (no Docker)."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

from ci import project
from ci.release import machine, reports
from ci.release.oci import Index, parse_index

TAG = "9.9.9-rc.1"
MACHINE_FACTS = {  # platform -> (host uname -m, container uname -m, cpu family)
    p: (m, m, machine.FAMILY.get(m, m)) for p, m in project.MACHINES.items()
}


def digest(seed: str) -> str:
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


def platform_dict(platform: str) -> dict[str, str]:
    parts = platform.split("/")
    out = {"os": parts[0], "architecture": parts[1]}
    if len(parts) > 2:
        out["variant"] = parts[2]
    return out


def index_doc(
    platforms: list[str] | None = None, *, attestations: bool = True, seed: str = ""
) -> dict[str, Any]:
    """An OCI index as buildx pushes it: images, then one attestation manifest per image."""
    platforms = project.platforms() if platforms is None else platforms
    images = [
        {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest(seed + p),
            "size": 1000,
            "platform": platform_dict(p),
        }
        for p in platforms
    ]
    atts = [
        {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest(seed + "att" + str(m["digest"])),
            "size": 800,
            "annotations": {
                "vnd.docker.reference.digest": m["digest"],
                "vnd.docker.reference.type": "attestation-manifest",
            },
            "platform": {"architecture": "unknown", "os": "unknown"},
        }
        for m in images
    ]
    return {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": images + (atts if attestations else []),
    }


PROVENANCE = "https://slsa.dev/provenance/v0.2"


def attestation_manifest(*predicate_types: str) -> bytes:
    """An attestation manifest as buildx pushes it: one in-toto layer per predicate."""
    layers = [
        {
            "mediaType": "application/vnd.in-toto+json",
            "digest": digest(t),
            "size": 100,
            "annotations": {"in-toto.io/predicate-type": t},
        }
        for t in predicate_types
    ]
    return json.dumps({"schemaVersion": 2, "layers": layers}).encode()


def predicates_for(index: Index, *types: str) -> dict[str, set[str]]:
    """Every attestation manifest of ``index`` -> ``types`` (default: SBOM and provenance)."""
    chosen = set(types) if types else {"https://spdx.dev/Document", PROVENANCE}
    return {a.digest: chosen for a in index.attestations}


def make_index(platforms: list[str] | None = None, **kw: Any) -> Index:
    return parse_index(json.dumps(index_doc(platforms, **kw)).encode())


def fingerprint(name: str) -> str:
    return hashlib.sha256(f"machine {name}".encode()).hexdigest()


def fake_test_image(platform: str) -> str:
    """The digest of the (made-up) candidate's test image for ``platform``."""
    return digest("test image " + platform)


TEST_IMAGES = {p: fake_test_image(p) for p in MACHINE_FACTS}


def key_of(signer: str) -> str:
    """A made-up key fingerprint for ``signer`` (real ones: signing.key_fingerprint)."""
    return "SHA256:" + signer


def make_report(
    index: Index,
    platform: str,
    machine_name: str = "pi-1",
    *,
    tag: str = TAG,
    emulated: bool = False,
    signer: str = "alice",
    test_image: str = "",
    **overrides: Any,
) -> dict[str, Any]:
    """A passing report from a real machine of ``platform`` (or an emulated x86 one) that ran
    the candidate's test image (``test_image``, default a made-up digest) and the smoke test."""
    host, inside, family = MACHINE_FACTS[platform]
    evidence: list[str] = []
    exe = "/usr/bin/python3.11"
    if emulated:
        host, family = "x86_64", "x86"
        exe = "/usr/libexec/qemu-binfmt/aarch64-binfmt-P"
        evidence = [f"a x86_64 host cannot run {inside} code natively"]
    report: dict[str, Any] = {
        "schema": reports.SCHEMA,
        "kind": reports.KIND,
        "repository": "clickvote",
        "tag": tag,
        "index_digest": index.digest,
        "platform": platform,
        "platform_digest": index.images[platform].digest
        if platform in index.images
        else digest("none"),
        "result": "pass",
        "duration_s": 12.5,
        "signer": key_of(signer),
        "machine": {
            "fingerprint": fingerprint(machine_name),
            "host_machine": host,
            "cpu_model": f"cpu of {machine_name}",
            "kernel": "Linux 6.1",
            "os": "Debian GNU/Linux 12 (bookworm)",
            "binfmt": {},
        },
        "container": {
            "machine": inside,
            "cpu_family": family,
            "cpu_model": "?",
            "process_exe": exe,
        },
        "emulation": {"emulated": emulated, "evidence": evidence},
        "tests": {
            "suite": "pytest+smoke",
            "passed": 105,
            "failed": 0,
            "skipped": 0,
            "pytest": {
                "passed": 100,
                "failed": 0,
                "errors": 0,
                "skipped": 0,
                "image_digest": test_image or fake_test_image(platform),
            },
        },
    }
    for dotted, value in overrides.items():
        *path, last = dotted.split("__")
        target = report
        for part in path:
            target = target[part]
        target[last] = value
    return report


def keypair(directory: Path, name: str) -> Path:
    """A fresh ed25519 key without passphrase; returns the private key's path."""
    directory.mkdir(parents=True, exist_ok=True)
    key = directory / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)],
        check=True,
        timeout=30,
    )
    return key


def signer_line(principal: str, key: Path, options: str = "") -> str:
    """One allowed_signers line for ``key`` (extra ``options``: e.g. valid-before="...")."""
    kind, blob = Path(str(key) + ".pub").read_text().split()[:2]
    extra = f",{options}" if options else ""
    return f'{principal} namespaces="clickvote-verify"{extra} {kind} {blob}'


def allowed_signers(path: Path, signers: dict[str, Path]) -> Path:
    """principal -> private key path; writes the allowed_signers file."""
    lines = [signer_line(principal, key) for principal, key in signers.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_signed(
    verifications: Path, report: dict[str, Any], key: Path, name: str | None = None
) -> Path:
    """Sign ``report`` with ``key``, naming that key as its signer."""
    from ci.release import signing

    report = {**report, "signer": signing.key_fingerprint(str(key))}
    fp, platform = report["machine"]["fingerprint"], report["platform"]
    path = reports.report_path(verifications, report["tag"], fp, platform)
    if name:
        path = path.with_name(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(reports.dumps(report))
    signing.sign(path, str(key))
    return path
