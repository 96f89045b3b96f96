"""The figures a report carries: parsing what the container shows, and how promote and the
release notes present them (no Docker)."""

from __future__ import annotations

import os
from typing import Any

from ci.release import figures

from .factories import make_index, make_report

FIGS = {
    "votes_per_s": 812.5,
    "cpu_ms_per_vote": 1.104,
    "idle_rss_mb": 47.9,
    "serve_to_healthz_s": 3.21,
    "emulated": False,
}


def with_figures(platform: str, device: str, **over: Any) -> dict[str, Any]:
    report = make_report(make_index(), platform, device, figures={**FIGS, **over})
    report["machine"]["model"] = device
    return report


def test_cpu_seconds_from_proc_stat() -> None:
    tick = os.sysconf("SC_CLK_TCK")
    line = f"1 (python3 (x)) S 0 1 1 0 -1 4194560 100 0 0 0 {3 * tick} {tick} 0 0 20 0 3 0"
    assert figures.cpu_seconds(line) == 4.0
    assert figures.status_kb("Name:\tpython3\nVmRSS:\t  49152 kB\n", "VmRSS") == 49152


def test_table_per_platform_and_device_marks_emulated() -> None:
    text = figures.table(
        [
            with_figures("linux/arm64", "Raspberry Pi 4 Model B Rev 1.4"),
            with_figures("linux/arm64", "qemu on x86_64", emulated=True, votes_per_s=95.0),
            make_report(make_index(), "linux/arm/v7", "pi-old"),
        ]
    )
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["platform", "device", "votes/s"]
    pi = next(line for line in lines if "Raspberry Pi 4" in line)
    assert "812.5" in pi and "1.104" in pi and "47.9" in pi and "3.21" in pi
    assert "emulated" not in pi
    assert next(line for line in lines if "qemu" in line).endswith("emulated")
    assert next(line for line in lines if "armv7" in line or "arm/v7" in line).endswith(
        "no figures"
    )


def test_markdown_lists_devices() -> None:
    md = figures.markdown([with_figures("linux/arm/v7", "Raspberry Pi 3 Model B Plus Rev 1.3")])
    assert md.splitlines()[0].startswith("| platform | device | votes/s |")
    assert "| linux/arm/v7 | Raspberry Pi 3 Model B Plus Rev 1.3 | 812.5 | 1.104 |" in md


def test_a_device_without_a_model_is_named_by_its_cpu() -> None:
    report = with_figures("linux/amd64", "unknown")
    assert figures.row(report)["device"] == "cpu of unknown"
