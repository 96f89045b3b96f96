"""The image on PostgreSQL + Redis, on every platform: two containers sharing them, as
docker/compose.yml runs its replicas (without the load balancer; the ARM ones emulated).

The containers use ``--network host`` and reach the test's PostgreSQL and Redis on
127.0.0.1, like the host-side tests."""

from __future__ import annotations

import json
import re
import secrets
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from services import PostgresServer, RedisServer, free_port, wait_healthy

from .conftest import Client, Dashboard
from .test_cluster import vote_msg, wait_count, watch

ROOT = Path(__file__).resolve().parents[2]
TAG = "clickvote-scale-test:latest"
START_TIMEOUT = 120.0  # an emulated server imports its stack in ~10 s; leave room for a busy host
STOP_WITHIN = 2.0  # seconds from `docker stop` to the container gone
STOP_TIMEOUT = 20  # docker stop's grace before SIGKILL: a lost signal takes this long
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from ci import project  # noqa: E402


def _platforms() -> list[str]:
    return project.platforms()


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The app image for every platform, built from this checkout (cached layers make it quick)."""
    if shutil.which("docker") is None:
        pytest.fail("no docker client: run `inv setup`")
    from ci.build import BuildError, BuildOptions, build

    log = tmp_path_factory.mktemp("build") / "bake.log"
    opts = BuildOptions(_platforms(), target="app", load=True, tag=TAG, progress="plain", log=log)
    try:
        build(opts)
    except BuildError as exc:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:]) if log.exists() else ""
        pytest.fail(f"{exc}\n{tail}")
    return TAG


class Container:
    def __init__(self, image: str, platform: str, port: int, env: dict[str, str]) -> None:
        self.name = f"clickvote-scale-{uuid.uuid4().hex[:10]}"
        self.url = f"http://127.0.0.1:{port}"
        cmd = ["docker", "run", "-d", "--rm", "--name", self.name, "--network", "host"]
        cmd += project.platform_args(platform)
        for key, value in env.items():
            cmd += ["-e", f"{key}={value}"]
        cmd += [image, "serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir", "/data"]
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)

    def wait_healthy(self, timeout: float = START_TIMEOUT) -> None:
        try:
            wait_healthy(self.url, timeout, alive=self.running, what=self.name)
        except RuntimeError as exc:
            raise AssertionError(f"{exc}:\n{self.logs()}") from None

    def running(self) -> bool:
        cmd = ["docker", "inspect", "-f", "{{.State.Running}}", self.name]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        return out.stdout.strip() == "true"

    def machine(self) -> str:
        cmd = [
            "docker",
            "exec",
            self.name,
            "python3",
            "-c",
            f"{project.MACHINE_PROBE}; print(m)",
        ]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout.strip()

    def logs(self) -> str:
        out = subprocess.run(
            ["docker", "logs", self.name], capture_output=True, text=True, timeout=30
        )
        return (out.stdout + out.stderr)[-4000:]

    def remove(self) -> None:
        subprocess.run(["docker", "rm", "-f", self.name], capture_output=True, timeout=60)


@pytest.fixture
def containers() -> Iterator[Callable[..., Container]]:
    made: list[Container] = []

    def make(*args: object) -> Container:
        c = Container(*args)  # type: ignore[arg-type]
        made.append(c)
        return c

    yield make
    for c in made:
        c.remove()


@pytest.mark.parametrize("platform", _platforms())
def test_image_replicas_share_postgres_and_redis(
    platform: str,
    image: str,
    pg: PostgresServer,
    redis_server: RedisServer,
    containers: Callable[..., Container],
    clients: Callable[[str], Client],
) -> None:
    env = {
        "CLICKVOTE_DATABASE_URL": pg.create_database(),
        "CLICKVOTE_REDIS_URL": redis_server.url,
        "CLICKVOTE_MASTER_KEY": secrets.token_hex(32),
        "CLICKVOTE_LOG_LEVEL": "warning",
    }
    # One after the other, as compose orders them: the first runs the migrations.
    one = containers(image, platform, free_port(), env)
    one.wait_healthy()
    two = containers(image, platform, free_port(), env)
    two.wait_healthy()
    assert one.machine() == project.MACHINES[platform]

    dash = Dashboard(one.url)
    dash.group("likes")
    pk = dash.keys()["publicKey"]
    voter, watcher = clients(one.url), clients(two.url)
    token = voter.login(pk)
    watcher_token = watch(watcher, pk, "bob")
    ack = voter.call("vote", vote_msg(token, "alice", 1))
    assert ack["ok"] and ack["total"]["count"] == 1, ack
    seen = wait_count(watcher, "get-votes-likes-p", 1, timeout=30)
    assert seen["poster"] == {"value": 1}
    # stored in PostgreSQL: the second replica reads the same total back
    state = {"id": "likes", "voteTo": "p", "userId": "bob", "token": watcher_token}
    again = watcher.call("get-votes", state)
    assert again["total"]["count"] == 1, again


@pytest.mark.parametrize("platform", _platforms())
def test_docker_stop_stops_the_server_at_once(
    platform: str, image: str, containers: Callable[..., Container]
) -> None:
    """`docker stop` sends SIGTERM to the server, PID 1 of its container (QEMU for the ARM
    images): it shuts down by itself with status 0, long before docker would kill it
    (clickvote/stopping.py)."""
    c = containers(image, platform, free_port(), {"CLICKVOTE_LOG_LEVEL": "warning"})
    c.wait_healthy()
    wait = subprocess.Popen(["docker", "wait", c.name], stdout=subprocess.PIPE, text=True)
    time.sleep(0.5)  # `docker wait` attached before the container (--rm) goes
    t0 = time.monotonic()
    cmd = ["docker", "stop", "-t", str(STOP_TIMEOUT), c.name]
    subprocess.run(cmd, check=True, capture_output=True, timeout=STOP_TIMEOUT + 30)
    took = time.monotonic() - t0
    status, _ = wait.communicate(timeout=30)
    assert status.strip() == "0", f"{platform}: exit status {status.strip()!r}"
    assert took < STOP_WITHIN, f"{platform}: docker stop took {took:.1f} s"


# Run in the image: every dependency imported from its byte code alone (but for modules that
# read their own source: anyio's lazily importing packages), anyio still lazy (a pyc alone
# would make it import all its submodules), and what a traceback through one shows (the
# image's ENTRYPOINT is `clickvote`: the test runs python3 itself).
BYTECODE_PROBE = """
import json, pathlib, sys, traceback
site = pathlib.Path("/opt/clickvote/site-packages")
own = str(site / "clickvote") + "/"
sources = sorted(p for p in site.rglob("*.py*") if p.suffix in (".py", ".pyi"))
lazy = [str(p) for p in sources if b"install_lazy_importer()" in p.read_bytes()]
import anyio, fastjsonschema, h11, psycopg, redis.asyncio, starlette.applications
import uvicorn.importer, uvicorn.server, wsproto
try:
    uvicorn.importer.import_from_string("no-colon")
except uvicorn.importer.ImportFromStringError:
    tb = traceback.format_exc()
print(json.dumps({
    "deps": [str(p) for p in sources if not str(p).startswith(own) and str(p) not in lazy],
    "lazy": lazy,
    "own": [str(p) for p in sources if str(p).startswith(own)],
    "files": [m.__file__ for m in (fastjsonschema, psycopg, redis.asyncio, uvicorn.server)],
    "caches": sorted(str(p) for p in site.rglob("__pycache__") if "clickvote" not in p.parts),
    "eager": [m for m in ("anyio.to_process", "anyio.to_interpreter") if m in sys.modules],
    "traceback": tb,
}))
"""


@pytest.mark.parametrize("platform", _platforms())
def test_dependencies_are_byte_code_only(platform: str, image: str) -> None:
    """The image carries its dependencies as byte code only (docker/bytecode_only.py): no
    source left but anyio's lazily importing packages', each module imports from its pyc,
    anyio stays lazy, and a traceback through one names its file and line; ClickVote's own
    modules keep their sources."""
    cmd = ["docker", "run", "--rm", *project.platform_args(platform), "--entrypoint", "python3"]
    out = subprocess.run(
        [*cmd, image, "-c", BYTECODE_PROBE], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout.splitlines()[-1])
    assert found["deps"] == [], found["deps"][:5]
    assert found["lazy"] and all("/site-packages/anyio/" in p for p in found["lazy"])
    assert found["eager"] == [], found["eager"]
    assert "/opt/clickvote/site-packages/clickvote/app.py" in found["own"]
    assert all(f.endswith(".pyc") for f in found["files"]), found["files"]
    tb = found["traceback"]
    assert re.search(r'File "/opt/clickvote/site-packages/uvicorn/importer.py", line \d+', tb), tb
