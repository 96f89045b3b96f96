"""Revoked, expired and not-yet-valid signers, with real SSH signatures judged by ssh-keygen
at each report's signing time (needs ssh-keygen, not Docker: the registry is faked)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ci.release import config, imagetools, promote, reports, signers, signing, verify
from ci.release.oci import Index
from ci.release.quorum import ReportCheck, tally

from .factories import TAG, keypair, make_index, make_report, signer_line, write_signed

pytestmark = pytest.mark.host

ARM64 = "linux/arm64"
BEFORE, AFTER = "2026-10-01T12:00:00Z", "2026-11-02T12:00:00Z"  # around 2026-11-01


@pytest.fixture(autouse=True, scope="module")
def _ssh_keygen() -> None:
    if shutil.which("ssh-keygen") is None:
        pytest.fail("ssh-keygen is missing: install openssh-client (inv setup does)")


@pytest.fixture(autouse=True)
def _no_test_image(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imagetools, "exists", lambda ref: False)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("keys")
    return {n: keypair(d, n) for n in ("alice", "alice-new", "bob", "carol")}


class Trust:
    def __init__(self, root: Path) -> None:
        self.dir = root / "verifications"
        self.dir.mkdir()
        self.allowed = self.dir / "allowed_signers"
        self.cfg = config.load({}, environ={}).with_overrides(verifications_dir=self.dir)

    def signers(self, *lines: str) -> None:
        self.allowed.write_text("\n".join(lines) + "\n")

    def revoke(self, *lines: str) -> None:
        (self.dir / "revoked").write_text("# signer from reason\n" + "\n".join(lines) + "\n")

    def sign(self, report: dict[str, Any], key: Path) -> Path:
        return write_signed(self.dir, report, key)

    def checks(self, candidate: Index, tag: str = TAG) -> dict[str, ReportCheck]:
        return {c.name: c for c in promote.check_reports(self.cfg, tag, candidate, self.allowed)}


@pytest.fixture()
def trust(tmp_path: Path) -> Trust:
    return Trust(tmp_path)


def report(index: Index, machine: str, signed_at: str, **kw: Any) -> dict[str, Any]:
    return make_report(index, ARM64, machine, signed_at=signed_at, **kw)


def test_expired_key_counts_only_for_what_it_signed_while_valid(
    trust: Trust, keys: dict[str, Path]
) -> None:
    trust.signers(signer_line("alice@example.invalid", keys["alice"], 'valid-before="20261101"'))
    index = make_index()
    old = trust.sign(report(index, "pi-1", BEFORE), keys["alice"])
    late = trust.sign(report(index, "pi-2", AFTER), keys["alice"])
    checks = trust.checks(index)
    assert checks[old.name].counts, checks[old.name].problems
    c = checks[late.name]
    assert c.ok and not c.counts and c.signer == "alice@example.invalid"
    assert "key has expired" in c.ignored and "signed 2026-11-02T12:00:00Z" in c.ignored
    # moved into the key's validity after signing: the signature no longer matches
    late.write_text(late.read_text().replace(AFTER, BEFORE))
    c = trust.checks(index)[late.name]
    assert not c.ok and any("tampered" in p for p in c.problems), c.problems


def test_key_not_yet_valid_is_ignored(trust: Trust, keys: dict[str, Path]) -> None:
    trust.signers(signer_line("bob@example.invalid", keys["bob"], 'valid-after="20261101"'))
    index = make_index()
    early = trust.sign(report(index, "pi-1", BEFORE), keys["bob"])
    ok = trust.sign(report(index, "pi-2", AFTER), keys["bob"])
    checks = trust.checks(index)
    assert "key is not yet valid" in checks[early.name].ignored
    assert checks[ok.name].counts, checks[ok.name].problems


def test_revoked_key_is_ignored_from_its_revocation_and_shown(
    trust: Trust, keys: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    trust.signers(
        signer_line("alice@example.invalid", keys["alice"]),
        signer_line("alice@example.invalid", keys["alice-new"]),
        signer_line("bob@example.invalid", keys["bob"]),
    )
    old_key = signing.key_fingerprint(str(keys["alice"]))
    trust.revoke(f"{old_key} 2026-11-01T00:00:00Z laptop stolen")
    index = make_index()
    before = trust.sign(report(index, "pi-1", BEFORE), keys["alice"])
    after = trust.sign(report(index, "pi-2", AFTER), keys["alice"])
    rotated = trust.sign(report(index, "pi-3", AFTER), keys["alice-new"])
    checks = trust.checks(index)
    assert checks[before.name].counts and checks[rotated.name].counts
    c = checks[after.name]
    assert c.ok and not c.counts
    assert c.ignored.startswith(f"key {old_key} of alice@example.invalid revoked from 2026-11-01")
    assert "(laptop stolen)" in c.ignored
    reasons = promote.evaluate(trust.cfg, TAG, index, trust.allowed)
    out = capsys.readouterr().out
    assert f"{after.name}: {ARM64} signer=alice@example.invalid" in out
    assert "-> ignored: key " in out and "laptop stolen" in out
    assert not any(after.name in r for r in reasons), reasons  # shown, not blocking


def test_revoking_a_person_revokes_all_their_keys(trust: Trust, keys: dict[str, Path]) -> None:
    trust.signers(
        signer_line("alice@example.invalid", keys["alice"]),
        signer_line("alice@example.invalid", keys["alice-new"]),
    )
    trust.revoke("alice@example.invalid 2026-11-01 left the project")
    index = make_index()
    paths = [
        trust.sign(report(index, m, AFTER), keys[k])
        for m, k in (("pi-1", "alice"), ("pi-2", "alice-new"))
    ]
    checks = trust.checks(index)
    for p in paths:
        assert "signer alice@example.invalid revoked from" in checks[p.name].ignored
    [v] = tally(checks.values(), [ARM64], lambda p: 1)
    assert v.ignored == 2 and v.signers == 0 and not v.ok
    assert "2 report(s) of revoked or expired keys ignored" in v.reasons[0]


def test_one_person_on_two_machines_with_two_keys_counts_once(
    trust: Trust, keys: dict[str, Path]
) -> None:
    trust.signers(
        signer_line("alice@example.invalid", keys["alice"]),
        signer_line("alice@example.invalid", keys["alice-new"]),
        signer_line("bob@example.invalid", keys["bob"]),
    )
    index = make_index()
    trust.sign(report(index, "pi-1", AFTER), keys["alice"])
    trust.sign(report(index, "pi-2", AFTER), keys["alice-new"])
    trust.sign(report(index, "pi-3", AFTER), keys["bob"])
    checks = trust.checks(index)
    assert all(c.counts for c in checks.values()), [c.problems for c in checks.values()]
    [v] = tally(checks.values(), [ARM64], lambda p: 3)
    assert v.signers == 2
    assert "are signed by alice@example.invalid (counted once)" in v.reasons[0]


def test_report_for_another_digest_is_rejected(trust: Trust, keys: dict[str, Path]) -> None:
    trust.signers(signer_line("bob@example.invalid", keys["bob"]))
    other = trust.sign(report(make_index(seed="other"), "pi-1", AFTER), keys["bob"])
    c = trust.checks(make_index())[other.name]
    assert not c.ok and any(f"{ARM64} digest" in p for p in c.problems)


def test_replayed_report_of_an_older_candidate_is_rejected(
    trust: Trust, keys: dict[str, Path]
) -> None:
    """rc.1's genuine report copied into rc.2's directory, as is and with its tag edited."""
    trust.signers(signer_line("carol@example.invalid", keys["carol"]))
    rc1, rc2 = make_index(seed="rc.1"), make_index(seed="rc.2")
    path = trust.sign(report(rc1, "pi-1", AFTER, tag="9.9.9-rc.1"), keys["carol"])
    replay = trust.dir / "9.9.9-rc.2" / path.name
    replay.parent.mkdir()
    shutil.copy(path, replay)
    shutil.copy(f"{path}.sig", f"{replay}.sig")
    c = trust.checks(rc2, "9.9.9-rc.2")[replay.name]
    assert "report is for tag 9.9.9-rc.1, not 9.9.9-rc.2" in c.problems
    assert any("index digest" in p for p in c.problems)
    replay.write_text(path.read_text().replace("9.9.9-rc.1", "9.9.9-rc.2"))
    c = trust.checks(rc2, "9.9.9-rc.2")[replay.name]
    assert any("tampered" in p for p in c.problems)


def test_verify_signs_its_signing_time(trust: Trust, keys: dict[str, Path]) -> None:
    trust.signers(signer_line("bob@example.invalid", keys["bob"], 'valid-after="20260101"'))
    index = make_index()
    data = make_report(index, ARM64, signer="bob")
    data["signer"] = signing.key_fingerprint(str(keys["bob"]))
    path = trust.dir / TAG / "r-arm64.json"
    verify.write_signed(path, data, str(keys["bob"]))
    signed = signers.signing_time(reports.load(path))
    assert signed is not None and abs((datetime.now(UTC) - signed).total_seconds()) < 60
    assert trust.checks(index)[path.name].counts
