"""docker/compose.yml: valid for `docker compose config`, what it promises is there, and the
stack run for real: built locally, every service on the host's network (127.0.0.1 only)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker" / "compose.yml"
REPLICAS = ("clickvote-1", "clickvote-2")


def _config(*files: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    if shutil.which("docker") is None:
        pytest.fail("no docker client: run `inv setup`")
    cmd = ["docker", "compose", *(a for f in files for a in ("-f", str(f)))]
    out = subprocess.run(
        [*cmd, "config", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", **(env or {})},  # no user overrides
    )
    assert out.returncode == 0, out.stderr
    return dict(json.loads(out.stdout))


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return _config(COMPOSE)


def test_services_and_health_checks(config: dict[str, Any]) -> None:
    services = config["services"]
    assert set(services) == {"postgres", "redis", "nginx", *REPLICAS}
    for name, svc in services.items():
        assert svc.get("healthcheck", {}).get("test"), f"{name} has no health check"


def test_replicas_use_the_project_image_on_postgres_and_redis(config: dict[str, Any]) -> None:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from ci import project

    image = project.image_ref("app")
    for name in REPLICAS:
        svc = config["services"][name]
        assert svc["image"] == image
        env = svc["environment"]
        assert env["CLICKVOTE_DATABASE_URL"].startswith("postgresql://")
        assert "@postgres:5432/" in env["CLICKVOTE_DATABASE_URL"]
        assert env["CLICKVOTE_REDIS_URL"] == "redis://redis:6379/0"
        assert "ports" not in svc, "only the load balancer publishes a port"
    assert config["services"]["clickvote-2"]["depends_on"]["clickvote-1"]["condition"] == (
        "service_healthy"
    )


def test_named_volumes_and_one_published_port(config: dict[str, Any]) -> None:
    assert {"postgres-data", "redis-data", "clickvote-data"} <= set(config["volumes"])
    mounts = {
        v["source"]
        for svc in config["services"].values()
        for v in svc.get("volumes", [])
        if v["type"] == "volume"
    }
    assert {"postgres-data", "clickvote-data"} <= mounts
    published = [name for name, svc in config["services"].items() if svc.get("ports")]
    assert published == ["nginx"]
    assert config["services"]["nginx"]["ports"][0]["published"] == "8000"


def test_hostnet_override_puts_every_service_on_127_0_0_1_only() -> None:
    ports = {"HTTP": "18000", "1": "18001", "2": "18002", "POSTGRES": "15432", "REDIS": "16379"}
    env = {f"CLICKVOTE_{name}_PORT": port for name, port in ports.items()}
    services = _config(COMPOSE, ROOT / "docker" / "compose.hostnet.yml", env=env)["services"]
    for name, svc in services.items():
        assert svc.get("network_mode") == "host", name
        assert not svc.get("ports"), f"{name} publishes a port on the host network"
    assert "listen_addresses=127.0.0.1" in services["postgres"]["command"]
    assert services["postgres"]["environment"]["PGPORT"] == ports["POSTGRES"]
    redis = services["redis"]["command"]
    assert redis[redis.index("--bind") + 1] == "127.0.0.1"
    assert redis[redis.index("--port") + 1] == ports["REDIS"]
    for n in "12":
        env_n = services[f"clickvote-{n}"]["environment"]
        assert env_n["CLICKVOTE_HOST"] == "127.0.0.1"
        assert env_n["CLICKVOTE_PORT"] == ports[n]
        assert f"@127.0.0.1:{ports['POSTGRES']}/" in env_n["CLICKVOTE_DATABASE_URL"]
        assert env_n["CLICKVOTE_REDIS_URL"] == f"redis://127.0.0.1:{ports['REDIS']}/0"
    nginx = services["nginx"]["environment"]
    assert nginx["NGINX_LISTEN"] == f"127.0.0.1:{ports['HTTP']}"
    assert [nginx["CLICKVOTE_UPSTREAM_1"], nginx["CLICKVOTE_UPSTREAM_2"]] == [
        f"127.0.0.1:{ports['1']}",
        f"127.0.0.1:{ports['2']}",
    ]


# --------------------------------------------------------------------------- the stack, run

HOSTNET = ROOT / "docker" / "compose.hostnet.yml"
APP_TAG = "clickvote-compose-test:latest"
UP_TIMEOUT = 240  # seconds for `up --wait`: PostgreSQL, Redis, two replicas one after the other
COMMAND_TIMEOUT = 120


def _ci() -> Any:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from ci import build, compose, project

    return build, compose, project


def _native_platform() -> str:
    """The engine's own platform, as the bake file names it (no emulation for this stack)."""
    _, _, project = _ci()
    out = subprocess.run(
        ["docker", "version", "--format", "{{.Server.Os}}/{{.Server.Arch}}"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    native = out.stdout.strip()
    found = [p for p in project.platforms() if p == native or p.startswith(native + "/")]
    assert found, f"the engine's platform {native} is not one the images are built for"
    return str(found[0])


@pytest.fixture(scope="module")
def stack_images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The recipe's image variables -> local images: the app for the native platform and
    postgres, redis and nginx from Debian's packages (`inv compose-images`)."""
    if shutil.which("docker") is None:
        pytest.fail("no docker client: run `inv setup`")
    build, compose, _ = _ci()
    logs = tmp_path_factory.mktemp("compose-build")
    opts = build.BuildOptions(
        [_native_platform()], load=True, tag=APP_TAG, progress="plain", log=logs / "app.log"
    )
    try:
        build.build(opts)
        images = dict(compose.build_images(log=logs / "services.log"))
    except build.BuildError as exc:
        tails = [p.read_text(errors="replace").splitlines()[-30:] for p in logs.glob("*.log")]
        pytest.fail(f"{exc}\n" + "\n".join(line for t in tails for line in t))
    assert set(images) == {f"CLICKVOTE_{s.upper()}_IMAGE" for s in ("postgres", "redis", "nginx")}
    return {**images, "CLICKVOTE_IMAGE": APP_TAG}


class Stack:
    """docker/compose.yml + docker/compose.hostnet.yml under a project name of its own, every
    service on 127.0.0.1 ports chosen here."""

    def __init__(self, images: dict[str, str]) -> None:
        from services import free_port

        self.project = f"clickvote-test-{uuid.uuid4().hex[:10]}"
        self.ports = {
            name: free_port()
            for name in ("HTTP", "1", "2", "POSTGRES", "REDIS")  # CLICKVOTE_<name>_PORT
        }
        own = ("CLICKVOTE_", "POSTGRES_", "COMPOSE_")  # the recipe's variables: only these
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(own)},
            **images,
            **{f"CLICKVOTE_{name}_PORT": str(port) for name, port in self.ports.items()},
            "POSTGRES_PASSWORD": uuid.uuid4().hex,
        }
        self.nginx = f"http://127.0.0.1:{self.ports['HTTP']}"
        self.replicas = {f"clickvote-{n}": f"http://127.0.0.1:{self.ports[n]}" for n in "12"}

    def compose(
        self, *args: str, timeout: float = COMMAND_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        cmd = ["docker", "compose", "-p", self.project, "-f", str(COMPOSE), "-f", str(HOSTNET)]
        return subprocess.run(
            [*cmd, *args], capture_output=True, text=True, timeout=timeout, env=self.env
        )

    def up(self) -> None:
        out = self.compose(
            "up",
            "-d",
            "--pull",
            "never",
            "--wait",
            "--wait-timeout",
            str(UP_TIMEOUT),
            timeout=UP_TIMEOUT + 60,
        )
        assert out.returncode == 0, f"{out.stderr}\n{self.logs()}"

    def logs(self, service: str = "") -> str:
        out = self.compose("logs", "--no-color", "--tail", "60", *([service] if service else []))
        return out.stdout + out.stderr

    def container(self, service: str) -> str:
        out = self.compose("ps", "-q", service)
        assert out.returncode == 0 and out.stdout.strip(), out.stderr
        return out.stdout.strip()

    def down(self) -> None:
        self.compose("down", "-v", "--timeout", "5", "--remove-orphans", timeout=180)


@pytest.fixture
def stack(stack_images: dict[str, str]) -> Iterator[Stack]:
    s = Stack(stack_images)
    try:
        s.up()
        yield s
    finally:
        s.down()


def _routed_to(stack: Stack) -> str:
    """The replica nginx sends this host's requests to (ip_hash): the one whose access log
    shows a request made through nginx with a mark of its own."""
    import requests

    mark = uuid.uuid4().hex
    assert requests.get(f"{stack.nginx}/healthz?mark={mark}", timeout=10).status_code == 200
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for name in stack.replicas:
            if mark in stack.logs(name):
                return name
        time.sleep(0.5)
    raise AssertionError(f"no replica logged the request marked {mark}:\n{stack.logs()}")


def _export_votes(stack: Stack, service: str) -> list[dict[str, Any]]:
    """The votes table as `clickvote export` run in ``service``'s container writes it."""
    out = stack.compose("exec", "-T", service, "clickvote", "export")
    assert out.returncode == 0, out.stderr
    table = json.loads(out.stdout)["tables"]["votes"]
    return [dict(zip(table["columns"], row, strict=True)) for row in table["rows"]]


def test_stack_through_nginx_on_the_host_network(stack: Stack) -> None:
    from services import Client

    from .conftest import Dashboard
    from .test_cluster import vote_msg, wait_count, watch

    made: list[Client] = []

    def client(url: str) -> Client:
        made.append(Client(url))
        return made[-1]

    try:
        dash = Dashboard(stack.nginx)  # the dashboard through nginx: cookies, CSRF, sessions
        dash.group("likes")
        pk = dash.keys()["publicKey"]
        page = client(stack.nginx)  # a page's live connection, through nginx (WebSocket)
        page_token = watch(page, pk, "reader")

        # A vote through nginx is stored once: the ack, the read-back and the database agree.
        voter = client(stack.nginx)
        ack = voter.call("vote", vote_msg(voter.login(pk), "alice", 1))
        assert ack["ok"] and ack["total"]["count"] == 1, ack
        assert wait_count(page, "get-votes-likes-p", 1, timeout=30)["total"]["count"] == 1
        state = {"id": "likes", "voteTo": "p", "userId": "reader", "token": page_token}
        assert page.call("get-votes", state)["total"]["count"] == 1
        rows = [r for r in _export_votes(stack, "clickvote-2") if r["vote_to"] == "p"]
        assert len(rows) == 1 and rows[0]["value"] == 1, rows

        # The page sees votes cast directly on each replica, so on the one it is not on too.
        for n, (name, url) in enumerate(stack.replicas.items(), start=2):
            direct = client(url)
            ack = direct.call("vote", vote_msg(direct.login(pk), f"voter-{name}", 1))
            assert ack["ok"] and ack["total"]["count"] == n, ack
            wait_count(page, "get-votes-likes-p", n, timeout=30)

        # The replica nginx uses is killed: votes through nginx still succeed, on the other.
        victim = _routed_to(stack)
        killed = subprocess.run(
            ["docker", "kill", stack.container(victim)],
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
        )
        assert killed.returncode == 0, killed.stderr
        survivor = next(name for name in stack.replicas if name != victim)
        after = client(stack.nginx)
        ack = after.call("vote", vote_msg(after.login(pk), "after-kill", 1))
        assert ack["ok"] and ack["total"]["count"] == 4, ack
        voters = [r["voter"] for r in _export_votes(stack, survivor) if r["vote_to"] == "p"]
        assert len(voters) == len(set(voters)) == 4, voters
    finally:
        for c in made:
            with contextlib.suppress(Exception):  # one to the killed replica is gone already
                c.close()
