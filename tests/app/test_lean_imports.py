"""The PostgreSQL and Redis clients are imported only where they are configured: a SQLite
installation without Redis (a small device) never loads them. Nor what only some paths
need: bcrypt (hashes written before scrypt), the XML library. FastAPI and pydantic are
never loaded (pydantic-core has no wheel for some platforms); the command line's account
commands don't load the HTTP layer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import clickvote

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
