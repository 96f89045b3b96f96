"""The PostgreSQL and Redis clients are imported only where they are configured: a SQLite
installation without Redis (a small device) never loads them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import clickvote

SERVE_WITHOUT_SERVING = """
import asyncio, json, sys
import clickvote.app, clickvote.cli
from clickvote.app import create_app
from clickvote.config import Settings
from clickvote.context import Context

settings = Settings.from_env()
create_app(settings)
ctx = Context.build(settings)
asyncio.run(ctx.start())
asyncio.run(ctx.close())
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})))
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
    loaded = set(json.loads(out.splitlines()[-1]))
    assert "clickvote" in loaded and "sqlite3" in loaded
    assert not loaded & {"psycopg", "psycopg_binary", "psycopg_c", "psycopg_pool", "redis"}
