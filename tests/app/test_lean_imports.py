"""The PostgreSQL and Redis clients are imported only where they are configured: a SQLite
installation without Redis (a small device) never loads them. Nor what only some paths
need: bcrypt (hashes written before scrypt), the XML library (the badge's escaping)."""

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
    assert not loaded & {"bcrypt", "xml"}
