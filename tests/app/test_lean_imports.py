"""The PostgreSQL and Redis clients are imported only where they are configured: a SQLite
installation without Redis (a small device) never loads them. Nor what only some paths
need: bcrypt (hashes written before scrypt), the XML library. FastAPI and pydantic are
never loaded (pydantic-core has no wheel for some platforms); the command line's account
commands don't load the HTTP layer. `clickvote serve` loads neither uvicorn's command line
nor logging.config (clickvote/serving.py), and the API's schema compiler only with the
first request it validates."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import clickvote
from clickvote.client import free_port

SERVE_WITHOUT_SERVING = """
import asyncio, json, sys
import clickvote.app, clickvote.cli, clickvote.connguard, uvicorn
from clickvote.app import create_app
from clickvote.config import Settings
from clickvote.context import Context

settings = Settings.from_env()
create_app(settings)
ctx = Context.build(settings)
asyncio.run(ctx.start())
asyncio.run(ctx.close())
print(json.dumps(sorted(sys.modules)))
"""


# uvicorn's command line (uvicorn.main: click; its supervisors: multiprocessing), and the
# logging.config uvicorn would configure its loggers with
NOT_LOADED = {"uvicorn.main", "click", "multiprocessing", "logging.config", "logging.handlers"}

# `clickvote serve` in this process's main thread; a thread reports what it loaded while idle
# and after the first API requests, with what the server logged, then stops it (SIGTERM).
SERVE_AND_REPORT = """
import http.client, json, os, signal, sys, threading, time

port, data_dir, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]


def ask(method, path, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"content-type": "application/json"} if body is not None else {}
    conn.request(method, path, body=body and json.dumps(body), headers=headers)
    r = conn.getresponse()
    answer = (r.status, r.read().decode())
    conn.close()
    return answer


def loaded():
    # modules whose code ran (a deferred one holds only the import system's __names__)
    return sorted(
        n for n, m in sys.modules.items() if m and any(not k.startswith("__") for k in vars(m))
    )


def report():
    deadline = time.monotonic() + 120
    while True:
        try:
            ask("GET", "/healthz")
            break
        except OSError:
            if time.monotonic() > deadline:
                os._exit(5)
            time.sleep(0.05)
    found = {"idle": loaded()}
    found["bad"] = ask("POST", "/auth/register", {"email": 5, "password": "password123"})
    good = {"email": "a@example.com", "password": "password123"}
    found["good"] = ask("POST", "/auth/register", good)
    found["openapi"] = ask("GET", "/openapi.json")
    found["used"] = loaded()
    with open(out, "w") as fh:
        json.dump(found, fh)
    os.kill(os.getpid(), signal.SIGTERM)


threading.Thread(target=report, daemon=True).start()
from clickvote.cli import main

sys.exit(main(["serve", "--port", str(port), "--data-dir", data_dir]))
"""


def test_serve_loads_no_command_line_and_compiles_schemas_on_use(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLICKVOTE_")}
    env["CLICKVOTE_BCRYPT_ROUNDS"] = "4"  # a cheap hash: this test is about imports
    env["CLICKVOTE_WORKERS"] = "1"  # the serving process itself (a worker loads the same)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(clickvote.__file__).parent.parent), env.get("PYTHONPATH", "")]
    )
    out = tmp_path / "found.json"
    args = [str(free_port()), str(tmp_path / "data"), str(out)]
    proc = subprocess.run(
        [sys.executable, "-c", SERVE_AND_REPORT, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    found = json.loads(out.read_text())
    idle, used = set(found["idle"]), set(found["used"])
    assert "clickvote.app" in idle and "uvicorn.server" in idle
    assert not idle & {*NOT_LOADED, "fastjsonschema"}, idle & NOT_LOADED
    assert not used & NOT_LOADED
    status, text = found["bad"]
    assert status == 422 and json.loads(text)["field"] == "email", text
    assert found["good"][0] == 200, found["good"]
    status, text = found["openapi"]
    assert status == 200 and json.loads(text)["openapi"] == "3.1.0"
    assert "fastjsonschema" in used
    # uvicorn's log lines as its LOGGING_CONFIG formats them: server on stderr, access on stdout
    assert "INFO:     Uvicorn running on http://127.0.0.1:" in proc.stderr, proc.stderr
    assert "INFO:     Finished server process" in proc.stderr
    assert '- "POST /auth/register HTTP/1.1" 422' in proc.stdout, proc.stdout
    assert '- "GET /healthz HTTP/1.1" 200' in proc.stdout


def test_sqlite_without_redis_loads_no_client(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLICKVOTE_")}
    env["CLICKVOTE_DATA_DIR"] = str(tmp_path)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(clickvote.__file__).parent.parent), env.get("PYTHONPATH", "")]
    )
    out = subprocess.run(
        [sys.executable, "-c", SERVE_WITHOUT_SERVING],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    modules = set(json.loads(out.splitlines()[-1]))
    loaded = {m.split(".")[0] for m in modules}
    assert "clickvote" in loaded and "sqlite3" in loaded and "clickvote.storage.sql" in modules
    assert not loaded & {"psycopg", "psycopg_binary", "psycopg_c", "psycopg_pool", "redis"}
    assert not loaded & {"fastapi", "pydantic", "pydantic_core"}
    assert not loaded & {"bcrypt", "xml"}


def test_account_commands_load_no_http_layer(tmp_path: Path) -> None:
    code = (
        "import json, sys; from clickvote.cli import main; "
        "main(['createuser', '--data-dir', sys.argv[1], '--email', 'a@example.com', "
        "'--password', 'password123']); "
        "main(['setpassword', '--data-dir', sys.argv[1], '--email', 'a@example.com', "
        "'--password', 'password456']); "
        "print(json.dumps(sorted(sys.modules)))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLICKVOTE_")}
    env["CLICKVOTE_BCRYPT_ROUNDS"] = "4"  # a cheap hash: this test is about imports
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(clickvote.__file__).parent.parent), env.get("PYTHONPATH", "")]
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    loaded = set(json.loads(out.splitlines()[-1]))
    assert "clickvote.accounts" in loaded
    http = {m for m in loaded if m.split(".")[0] in ("starlette", "fastapi", "uvicorn")}
    assert not http and not {m for m in loaded if m.startswith("clickvote.api")}
