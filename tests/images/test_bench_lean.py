"""benchmarks/lean.py and its rows in benchmarks/run.py: the same-run comparison with a
reference commit. Host only: benchmarks/ is not in the test images (tests/images/conftest.py
leaves this file out there)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import lean, run

pytestmark = pytest.mark.host


def test_start_read_from_proc_stat() -> None:
    t0 = lean.since_boot()
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    try:
        stat = Path(f"/proc/{proc.pid}/stat").read_text()
        # one clock tick of resolution either way
        assert abs(lean.started(stat) - t0) < 2 / lean.TICKS + 0.5
    finally:
        proc.kill()
        proc.wait()
    # a name holding spaces and parentheses does not shift the fields
    fields = ["S"] + [str(n) for n in range(4, 22)] + ["4200"]  # fields 3, 4-21, 22 + ["0"] * 30
    odd = "123 (a) b (c) " + " ".join(fields)
    assert lean.started(odd) == 4200 / lean.TICKS
    assert lean.cpu_seconds(odd) == (14 + 15) / lean.TICKS


def test_export_tree_unpacks_the_commit(tmp_path: Path) -> None:
    short = lean.export_tree("HEAD", tmp_path)
    assert (tmp_path / "clickvote" / "__init__.py").is_file()
    assert (tmp_path / "docker" / "docker-bake.hcl").is_file()
    assert short and len(short) >= 7
    with pytest.raises(lean.build.BuildError, match="not a commit"):
        lean.export_tree("no-such-ref-" + os.urandom(4).hex(), tmp_path / "x")


def _figures(start: float, idle: float, added: float) -> dict[str, object]:
    return {
        "native": {
            "start_s": start,
            "starts_s": [start, start / 2],
            "cpu_s": start,
            "idle_mb": idle,
            "load_mb": idle + 3,
        },
        "linux/arm64": {
            "start_s": start * 10,
            "cpu_s": start * 10,
            "idle_mb": idle,
            "load_mb": idle + 3,
            "added_uncompressed_mb": added,
            "emulated": True,
        },
    }


def test_rows_side_by_side_with_goals(tmp_path: Path) -> None:
    cmp = {
        "ref_commit": "abc1234",
        "commit": "0123abc",
        "platforms": ["linux/arm64"],
        "current": _figures(0.4, 40.0, 14.0),
        "reference": _figures(0.7, 52.5, 28.0),
        "nopyc": {"linux/arm64": {"start_s": 9.0, "cpu_s": 8.0}},
    }
    rows = {r.figure: r for r in run.lean_rows(cmp)}
    native = next(r for f, r in rows.items() if f.startswith("serve to /healthz, native"))
    assert native.value == 400 and "700.0 ms (abc1234)" in native.baseline and native.ok is True
    idle = next(r for f, r in rows.items() if f.startswith("idle RSS, native"))
    assert idle.ok is False  # 40 MB misses 32 MB
    assert rows["serve to /healthz, image arm64 (emulated)"].value == 4000
    added = rows["image arm64 adds over base"]
    assert added.ok is True and "28.0 MB (abc1234)" in added.baseline
    assert rows["serve to /healthz, image arm64 without pyc"].baseline == "4,000.0 ms with pyc"

    # its section of RESULTS.md is replaced by the next run, the rest kept
    results = tmp_path / "RESULTS.md"
    results.write_text("# ClickVote benchmarks\n\nother figures\n")
    run.write_lean(cmp, list(rows.values()), results)
    cmp["ref_commit"] = "def5678"
    run.write_lean(cmp, list(rows.values()), results)
    text = results.read_text()
    assert text.count(run.LEAN_START) == 1 and "other figures" in text
    assert "reference def5678" in text and "reference abc1234" not in text
    assert "this tree at 0123abc, reference def5678" in text
    assert "current native: 400, 200; current linux/arm64: ; reference native: 700, 350" in text
