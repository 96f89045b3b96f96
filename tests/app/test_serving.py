"""clickvote/serving.py: uvicorn without its command line still whole when asked, and its
loggers set up as uvicorn's LOGGING_CONFIG sets them up (each in a fresh interpreter: they
change what is imported and how logging is configured)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import clickvote


def run_python(code: str) -> str:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(clickvote.__file__).parent.parent), env.get("PYTHONPATH", "")]
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()[-1]


def test_deferred_uvicorn_loads_whole_on_first_use() -> None:
    code = """
import json, sys
from clickvote import serving
serving.lean_imports()
import uvicorn, logging
from uvicorn import Config, Server  # what uvicorn.lifespan takes from the package
before = sorted(m for m in ("uvicorn.main", "click") if m in sys.modules)
run = uvicorn.run  # a name only uvicorn/__init__.py defines
dict_config = logging.config.dictConfig
print(json.dumps({
    "before": before,
    "after": "uvicorn.main" in sys.modules and callable(run) and callable(dict_config),
    "same": Config is uvicorn.config.Config and Server is uvicorn.server.Server,
    "version": uvicorn.__version__ == uvicorn._version.__version__,
}))
"""
    found = json.loads(run_python(code))
    assert found == {"before": [], "after": True, "same": True, "version": True}


DESCRIBE = """
import json, logging

def describe():
    out = {}
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi"):
        log = logging.getLogger(name)
        out[name] = [log.level, log.propagate, [
            [type(h).__name__, h.stream.name, type(h.formatter).__name__, h.formatter._fmt,
             h.formatter.use_colors]
            for h in log.handlers
        ]]
    return out
"""


def test_loggers_as_uvicorns_logging_config() -> None:
    ours = DESCRIBE + (
        "from clickvote import serving\n"
        "serving.lean_imports()\n"
        "serving.configure_logging()\n"
        "print(json.dumps(describe()))"
    )
    uvicorns = DESCRIBE + (
        "import logging.config\n"
        "from uvicorn.config import LOGGING_CONFIG\n"
        "logging.config.dictConfig(LOGGING_CONFIG)\n"
        "print(json.dumps(describe()))"
    )
    described = json.loads(run_python(ours))
    assert described == json.loads(run_python(uvicorns))
    assert described["uvicorn.access"][2][0][1] == "<stdout>"


def test_serve_on_a_taken_port_exits_with_uvicorns_startup_failure(tmp_path: Path) -> None:
    """As uvicorn.run: a server that could not start exits with status 3, the error logged."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLICKVOTE_")}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(clickvote.__file__).parent.parent), env.get("PYTHONPATH", "")]
    )
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        cmd = [sys.executable, "-m", "clickvote", "serve", "--port", port]
        proc = subprocess.run(
            [*cmd, "--data-dir", str(tmp_path)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 3, proc.stderr
    assert "ERROR:    [Errno" in proc.stderr, proc.stderr
