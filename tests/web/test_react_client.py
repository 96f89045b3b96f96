"""The PUBLISHED @clickvote/react 0.0.8 client, unchanged, against this server.

tests/web/react/build.py installs it with npm (cached by lockfile hash) and bundles app.jsx with
esbuild; the bundle is served from another origin, like a customer's React site.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from .conftest import Account, Server, Site, screenshot

pytestmark = pytest.mark.host
BUILD = Path(__file__).parent / "react" / "build.py"


@pytest.fixture(scope="session")
def react_bundle(site: Site) -> Path:
    if shutil.which("npm") is None or shutil.which("node") is None:
        pytest.fail("node and npm are needed to install @clickvote/react (inv setup installs them)")
    spec = importlib.util.spec_from_file_location("cv_react_build", BUILD)
    assert spec and spec.loader
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    work = build.install(build.npm.cache_root())
    return Path(build.bundle(work, site.root))


def react_page(site: Site, name: str, cfg: dict[str, Any]) -> str:
    return site.page(
        name,
        f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>React client</title>
<link rel="stylesheet" href="app.css">
<style>body{{font:16px system-ui;margin:40px}} section{{margin:24px 0}}</style></head>
<body><div id="root"></div>
<script>window.CV = {json.dumps(cfg)};</script>
<script src="app.js"></script></body></html>""",
    )


def probe(page: Any, name: str) -> Any:
    return page.locator(f'[data-testid="{name}"]')


def expect_attr(page: Any, name: str, attr: str, value: str) -> None:
    from playwright.sync_api import expect

    expect(probe(page, name)).to_have_attribute(attr, value, timeout=10_000)


@pytest.mark.parametrize("cv_server", [1, 2], indirect=True, ids=["1-worker", "2-workers"])
def test_published_react_client_live(
    cv_server: Server, site: Site, account: Account, react_bundle: Path, new_page: Any
) -> None:
    like = account.group("single")
    upvote = account.group("single")
    rate = account.group("range", 1, 5)
    base = {
        "apiUrl": cv_server.base,
        "publicKey": account.public_key,
        "voteTo": "article-1",
        "like": like,
        "upvote": upvote,
        "rate": rate,
    }
    url_a = react_page(site, "react-a.html", {**base, "userId": "alice"})
    url_b = react_page(site, "react-b.html", {**base, "userId": "bob"})
    a, b = new_page(), new_page()
    a.goto(url_a)
    b.goto(url_b)
    for p in (a, b):
        for name in ("like", "upvote", "rate"):
            expect_attr(p, name, "data-count", "0")

    # Like (heart) on A: B sees it live; A shows its own vote
    a.locator("#like [class*=likeButton]").click()
    expect_attr(b, "like", "data-count", "1")
    expect_attr(a, "like", "data-voted", "true")
    expect_attr(b, "like", "data-voted", "false")

    # Upvote on B, downvote on A
    b.locator("#upvote svg").first.click()
    expect_attr(a, "upvote", "data-count", "1")
    a.locator("#upvote svg").last.click()
    expect_attr(b, "upvote", "data-count", "0")

    # Stars: labels run from 5 down to 1
    a.locator("#rate label").nth(1).click()  # 4 stars
    expect_attr(b, "rate", "data-count", "1")
    expect_attr(b, "rate", "data-avg", "4")
    b.locator("#rate label").nth(3).click()  # 2 stars
    expect_attr(a, "rate", "data-count", "2")
    expect_attr(a, "rate", "data-avg", "3")

    # totals survive a reload (read back with get-votes), own vote included
    a.reload()
    expect_attr(a, "like", "data-count", "1")
    expect_attr(a, "like", "data-voted", "true")
    expect_attr(a, "rate", "data-avg", "3")
    screenshot(a, "react-client")
    assert not new_page.errors, new_page.errors
