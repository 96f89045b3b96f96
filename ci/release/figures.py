"""Real-hardware figures every verification measures, bounded to about a minute.

On the candidate's app image, in a container of its own (``--network host``, a free
127.0.0.1 port, a fresh volume): ``clickvote serve`` to the first 200 from ``/healthz``
(container start included), the server's idle RSS (VmRSS of PID 1), then the vote path at
saturation with the project's load generator (``benchmarks/loadgen.py``, closed loop:
every socket keeps its votes in flight) run by the verifier: votes/s acked and the
server's CPU time (utime + stime of PID 1) per acked vote. Under QEMU the process is
QEMU running the server: such figures are marked emulated, and say little about the device.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ci import project
from ci.release import ReleaseError, container
from ci.release.smoke import GROUP, Smoke, free_port
from clickvote.client import limits_off_env

SATURATION_S = 10.0
CLIENTS = 50
WINDOW = 2
IDLE_SETTLE_S = 2.0
# One load generator on one address: the per-voter and per-IP rate limits would measure
# themselves, not the vote path.
# one server process: PID 1 is the whole server (its RSS and CPU are read from /proc/1)
SERVER_ENV = {**limits_off_env(), "CLICKVOTE_WORKERS": "1"}
FIELDS = ("votes_per_s", "cpu_ms_per_vote", "idle_rss_mb", "serve_to_healthz_s")


def measure(ref: str, platform: str, config: dict[str, Any], timeout: float) -> dict[str, Any]:
    data = next(iter(config.get("Volumes") or {}), "/data")
    smoke = Smoke(port=free_port(), timeout=timeout)
    c = container.Container(
        ref, platform, volumes={container.create_volume(): data}, env=SERVER_ENV
    )
    try:
        t0 = time.monotonic()
        c.start(
            container.command_for(
                config,
                "clickvote",
                ["serve", "--host", "127.0.0.1", "--port", str(smoke.port), "--data-dir", data],
            )
        )
        smoke.wait_healthy(c.running, interval=0.1)
        startup = time.monotonic() - t0
        time.sleep(IDLE_SETTLE_S)
        rss_kb = status_kb(c.exec("cat", "/proc/1/status"), "VmRSS")
        smoke.register()
        with smoke.socket() as ws:
            token = ws.login(smoke.public_key)
        cpu0 = cpu_seconds(c.exec("cat", "/proc/1/stat"))
        load = loadgen(smoke.url, token)
        cpu = cpu_seconds(c.exec("cat", "/proc/1/stat")) - cpu0
    finally:
        c.remove()
    acked = int(load["acked"])
    return {
        "votes_per_s": round(acked / load["seconds"], 1) if load["seconds"] else 0.0,
        "cpu_ms_per_vote": round(cpu * 1000 / acked, 3) if acked else None,
        "idle_rss_mb": round(rss_kb / 1024, 1),
        "serve_to_healthz_s": round(startup, 2),
        "load": {
            "acked": acked,
            "errors": int(load["errors"]),
            "seconds": round(load["seconds"], 2),
            "clients": CLIENTS,
            "window": WINDOW,
            "server_cpu_s": round(cpu, 2),
        },
    }


def loadgen(url: str, token: str) -> dict[str, Any]:
    """benchmarks/loadgen.py in its own process, closed loop for SATURATION_S seconds."""
    with tempfile.TemporaryDirectory(prefix="clickvote-figures-") as tmp:
        out = Path(tmp, "load.json")
        cmd = [sys.executable, "-m", "benchmarks.loadgen", "votes", "--url", url]
        cmd += ["--token", token, "--group", GROUP, "--items", "10", "--tag", "verify"]
        cmd += ["--clients", str(CLIENTS), "--window", str(WINDOW)]
        cmd += ["--duration", str(SATURATION_S), "--out", str(out)]
        path = [str(project.ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
        try:
            proc = subprocess.run(
                cmd, cwd=project.ROOT, env=env, capture_output=True, timeout=SATURATION_S + 90
            )
        except subprocess.TimeoutExpired as e:
            raise ReleaseError("the load generator did not finish in time") from e
        if proc.returncode != 0 or not out.exists():
            raise ReleaseError(f"the load generator failed: {proc.stderr.decode()[-500:]}")
        result: dict[str, Any] = json.loads(out.read_text())
    result.pop("lat_ms", None)
    return result


def status_kb(status: str, key: str) -> int:
    for line in status.splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise ReleaseError(f"no {key} in /proc/1/status")


def cpu_seconds(stat: str) -> float:
    """utime + stime of a process from its /proc/PID/stat line."""
    fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state is fields[0]
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- presentation (pure) ------------------------------------------------------------------


def row(report: Mapping[str, Any]) -> dict[str, str]:
    """One report's figures as table cells; "-" where it has none."""
    raw_f, raw_m = report.get("figures"), report.get("machine")
    f: Mapping[str, Any] = raw_f if isinstance(raw_f, Mapping) else {}
    machine: Mapping[str, Any] = raw_m if isinstance(raw_m, Mapping) else {}
    cells = {
        "platform": str(report.get("platform", "?")),
        "device": str(
            next((v for v in (machine.get("model"), machine.get("cpu_model")) if _known(v)), "?")
        ),
    }
    for key in FIELDS:
        value = f.get(key)
        cells[key] = f"{value:,}" if isinstance(value, int | float) else "-"
    missing = "no figures" if not f or "error" in f else ""
    cells["note"] = "emulated" if f.get("emulated") else missing
    return cells


def _known(value: object) -> bool:
    return isinstance(value, str) and value not in ("", "unknown")


HEADERS = {
    "platform": "platform",
    "device": "device",
    "votes_per_s": "votes/s",
    "cpu_ms_per_vote": "CPU ms/vote",
    "idle_rss_mb": "idle RSS MB",
    "serve_to_healthz_s": "serve to /healthz s",
    "note": "",
}


def _rows(reports: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    return sorted((row(r) for r in reports), key=lambda r: (r["platform"], r["device"]))


def table(reports: Iterable[Mapping[str, Any]]) -> str:
    """Aligned plain text, one line per report, sorted by platform and device."""
    rows = [HEADERS, *_rows(reports)]
    widths = {k: max(len(r[k]) for r in rows) for k in HEADERS}
    return "\n".join("  ".join(r[k].ljust(widths[k]) for k in HEADERS).rstrip() for r in rows)


def markdown(reports: Iterable[Mapping[str, Any]]) -> str:
    rows = _rows(reports)
    lines = [
        "| " + " | ".join(HEADERS[k] or "note" for k in HEADERS) + " |",
        "|" + " --- |" * len(HEADERS),
    ]
    lines += ["| " + " | ".join(r[k] for k in HEADERS) + " |" for r in rows]
    return "\n".join(lines)
