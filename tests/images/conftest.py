"""The test images carry benchmarks/loadgen.py only (the release figures' load generator),
so the host test of benchmarks/lean.py is not collected there."""

from pathlib import Path

LEAN = Path(__file__).parents[2] / "benchmarks" / "lean.py"
collect_ignore = [] if LEAN.exists() else ["test_bench_lean.py"]
