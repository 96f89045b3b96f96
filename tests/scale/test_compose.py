"""docker/compose.yml: valid for `docker compose config`, and what it promises is there."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker" / "compose.yml"
REPLICAS = ("clickvote-1", "clickvote-2")


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    if shutil.which("docker") is None:
        pytest.fail("no docker client: run `inv setup`")
    out = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE), "config", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin"},  # no user overrides
    )
    assert out.returncode == 0, out.stderr
    return dict(json.loads(out.stdout))


def test_services_and_health_checks(config: dict[str, Any]) -> None:
    services = config["services"]
    assert set(services) == {"postgres", "redis", "nginx", *REPLICAS}
    for name, svc in services.items():
        assert svc.get("healthcheck", {}).get("test"), f"{name} has no health check"


def test_replicas_use_the_project_image_on_postgres_and_redis(config: dict[str, Any]) -> None:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from ci import project

    image = f"{project.image()}:{project.bake_defaults()['TAG']}"
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
