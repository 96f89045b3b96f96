"""Verification reports: their JSON shape, where they live, structural checks. Pure.

A report is written by ``inv verify`` and signed with ``ssh-keygen -Y sign``
(namespace ``clickvote-verify``); the signature sits next to it as ``.json.sig``.
Layout: ``verifications/<tag>/<fingerprint[:12]>-<arch>.json``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ci import project
from ci.release import ReleaseError, signers

SCHEMA = 1
KIND = "clickvote-verification"
FINGERPRINT_PREFIX = 12
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")

# field -> type (dotted paths into nested objects)
REQUIRED: Mapping[str, type | tuple[type, ...]] = {
    "schema": int,
    "kind": str,
    "repository": str,
    "tag": str,
    "index_digest": str,
    "platform": str,
    "platform_digest": str,
    "result": str,
    "duration_s": (int, float),
    "signer": str,
    "machine.fingerprint": str,
    "machine.host_machine": str,
    "machine.cpu_model": str,
    "machine.kernel": str,
    "machine.os": str,
    "container.machine": str,
    "emulation.emulated": bool,
    "emulation.evidence": list,
    "tests.suite": str,
    "tests.passed": int,
    "tests.failed": int,
}


def check_tag(tag: str) -> str:
    if not _TAG.match(tag):
        raise ReleaseError(f"{tag!r} is not a valid image tag")
    return tag


def report_path(verifications: Path, tag: str, fingerprint: str, platform: str) -> Path:
    name = f"{fingerprint[:FINGERPRINT_PREFIX]}-{project.arch_name(platform)}.json"
    return verifications / check_tag(tag) / name


def signature_path(report: Path) -> Path:
    return report.with_name(report.name + ".sig")


def dumps(report: Mapping[str, Any]) -> bytes:
    return (json.dumps(report, indent=2, sort_keys=True) + "\n").encode()


def get(report: Mapping[str, Any], dotted: str) -> Any:
    value: Any = report
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def structural_problems(report: Any) -> list[str]:
    """Missing or mistyped fields, malformed digests; empty when well formed."""
    if not isinstance(report, Mapping):
        return ["not a JSON object"]
    problems = []
    for key, kind in REQUIRED.items():
        value = get(report, key)
        if value is None:
            problems.append(f"missing field {key}")
        elif not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            problems.append(f"field {key} has the wrong type")
    if problems:
        return problems
    if report["schema"] != SCHEMA or report["kind"] != KIND:
        problems.append(f"not a schema {SCHEMA} {KIND} report")
    for key in ("index_digest", "platform_digest"):
        if not _DIGEST.match(report[key]):
            problems.append(f"{key} is not a sha256 digest")
    if not _HEX64.match(report["machine"]["fingerprint"]):
        problems.append("machine.fingerprint is not a sha256 hex digest")
    if report["result"] not in ("pass", "fail"):
        problems.append("result is neither pass nor fail")
    if "signed_at" in report and signers.signing_time(report) is None:
        problems.append("signed_at is not an ISO 8601 time")
    return problems


def load(path: Path) -> Any:
    """The parsed report, or None when the file is not JSON."""
    try:
        return json.loads(path.read_bytes())
    except ValueError:
        return None


def find(verifications: Path, tag: str) -> list[Path]:
    return sorted((verifications / check_tag(tag)).glob("*.json"))
