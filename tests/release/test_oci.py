"""Manifest list parsing and checks from JSON fixtures (no Docker)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ci import project
from ci.release import ReleaseError
from ci.release.oci import (
    SBOM,
    check_index,
    digest_of,
    format_index,
    parse_index,
    platform_name,
    predicate_types,
)

from .factories import (
    PROVENANCE,
    attestation_manifest,
    index_doc,
    make_index,
    platform_dict,
    predicates_for,
)

FIXTURES = Path(__file__).parent / "fixtures"


def configs_for(index, overrides=None):  # type: ignore[no-untyped-def]
    overrides = overrides or {}
    return {d.digest: overrides.get(p, platform_dict(p)) for p, d in index.images.items()}


def check(index, configs=None, predicates=None):  # type: ignore[no-untyped-def]
    configs = configs_for(index) if configs is None else configs
    predicates = predicates_for(index) if predicates is None else predicates
    return check_index(index, project.platforms(), configs, predicates)


def test_platform_names() -> None:
    assert platform_name({"os": "linux", "architecture": "arm", "variant": "v7"}) == "linux/arm/v7"
    assert platform_name({"os": "linux", "architecture": "arm64", "variant": "v8"}) == "linux/arm64"
    assert platform_name(None) == "unknown/unknown"


def test_digest_is_sha256_of_the_raw_bytes() -> None:
    raw = json.dumps(index_doc()).encode()
    assert parse_index(raw).digest == digest_of(raw)
    assert parse_index(raw + b" ").digest != digest_of(raw)


def test_attestations_are_not_platforms() -> None:
    index = make_index()
    assert list(index.images) == project.platforms()
    assert len(index.attestations) == len(project.platforms())
    assert "unknown/unknown" not in index.images


def test_buildx_fixture_parses() -> None:
    raw = (FIXTURES / "buildx-index.json").read_bytes()
    index = parse_index(raw)
    # recorded when the bake file listed these three
    assert set(index.images) == {"linux/amd64", "linux/arm64", "linux/arm/v7"}
    assert all(a.platform == "unknown/unknown" for a in index.attestations)
    text = format_index(index)
    assert "(attestation)" in text and "linux/arm/v7" in text


def test_complete_index_passes() -> None:
    index = make_index()
    result = check(index)
    assert result.ok, result.problems


def test_missing_platform_is_named() -> None:
    index = make_index(["linux/amd64", "linux/arm64"])
    result = check(index)
    missing = [p for p in project.platforms() if p not in ("linux/amd64", "linux/arm64")]
    assert "linux/arm/v7" in missing
    assert result.problems == [f"missing platform {p}" for p in missing]


def test_manifest_that_lies_about_its_architecture() -> None:
    index = make_index()
    configs = configs_for(index, {"linux/arm64": {"os": "linux", "architecture": "amd64"}})
    result = check(index, configs)
    assert not result.ok
    assert "claims linux/arm64 but its config says linux/amd64" in result.problems[0]


def test_unreadable_config_is_a_problem() -> None:
    index = make_index()
    result = check(index, {})
    assert len(result.problems) == len(project.platforms())


def test_duplicate_platform() -> None:
    doc = index_doc(attestations=False)
    doc["manifests"].append(dict(doc["manifests"][0], digest="sha256:" + "0" * 64))
    index = parse_index(json.dumps(doc).encode())
    result = check(index)
    assert any("listed 2 times" in p for p in result.problems)


def test_single_manifest_is_not_a_list() -> None:
    raw = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "layers": [],
        }
    ).encode()
    with pytest.raises(ReleaseError, match="single-platform manifest"):
        parse_index(raw)


def test_not_json() -> None:
    with pytest.raises(ReleaseError, match="not JSON"):
        parse_index(b"<html>")


def test_predicate_types_of_an_attestation_manifest() -> None:
    assert predicate_types(attestation_manifest(SBOM, PROVENANCE)) == {SBOM, PROVENANCE}
    assert predicate_types(b"not json") == set()


def test_candidate_without_attestations_fails() -> None:
    index = make_index(attestations=False)
    result = check(index)
    assert len(result.problems) == 2 * len(project.platforms())
    for platform in project.platforms():
        digest = index.images[platform].digest
        assert f"{platform} ({digest}) has no SBOM attestation" in result.problems
        assert f"{platform} ({digest}) has no provenance attestation" in result.problems


def test_each_platform_needs_both_attestations() -> None:
    index = make_index()
    predicates = predicates_for(index)
    arm64 = index.images["linux/arm64"].digest
    for a in index.attestations:
        if a.annotations["vnd.docker.reference.digest"] == arm64:
            predicates[a.digest] = {PROVENANCE}
    result = check(index, predicates=predicates)
    assert result.problems == [f"linux/arm64 ({arm64}) has no SBOM attestation"]
    assert check(index, predicates=predicates_for(index, SBOM)).problems == [
        f"{p} ({d.digest}) has no provenance attestation" for p, d in index.images.items()
    ]
