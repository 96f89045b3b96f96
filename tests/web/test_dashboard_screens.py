"""Every dashboard page in Chromium at a desktop and a phone width: no console errors, nothing
wider than the screen, the details a new user sees first, and a screenshot of each
(under CLICKVOTE_SCREENSHOTS, /tmp/clickvote-screenshots by default)."""

from __future__ import annotations

import contextlib
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from receiver import Receiver, verify

from .conftest import REPO, UI_TIMEOUT_MS, Server, screenshot

pytestmark = pytest.mark.host

STATIC = REPO / "clickvote" / "web" / "static"
# width, height, time zone: one zone with a half-hour offset, where no hour bucket starts at
# midnight, and one with summer time
SCREENS = {
    "desktop": (1280, 800, "Asia/Kolkata"),
    "phone": (390, 844, "America/New_York"),
}


@dataclass
class Screen:
    name: str
    zone: str
    page: Any
    server: Server
    errors: list[str] = field(default_factory=list)

    def goto(self, path: str) -> None:
        self.page.goto(self.server.url(path))

    def register(self) -> str:
        """A new account, signed in in this browser context (its cookies)."""
        email = f"screen-{uuid.uuid4().hex[:10]}@example.com"
        r = self.page.request.post(
            self.server.url("/auth/register"),
            data={"email": email, "password": "s3cret-passphrase"},
        )
        assert r.ok, r.text()
        return email

    def call(self, method: str, path: str, body: Any = None) -> Any:
        csrf = next(c["value"] for c in self.page.context.cookies() if c["name"] == "csrftoken")
        r = self.page.request.fetch(
            self.server.url(path), method=method, data=body, headers={"X-CSRF-Token": csrf}
        )
        assert r.ok, r.text()
        return r.json()

    def shot(self, what: str) -> None:
        """No horizontal overflow, no console errors so far, then the screenshot."""
        self.page.wait_for_load_state("networkidle")
        self.page.evaluate("() => window.scrollTo(0, 0)")  # sticky header where it belongs
        widths = self.page.evaluate(
            "() => [document.documentElement.scrollWidth, window.innerWidth]"
        )
        assert widths[0] <= widths[1], f"{what} is {widths[0]} px wide on a {widths[1]} px screen"
        path = screenshot(self.page, f"screen-{what}-{self.name}")
        assert path.stat().st_size > 0
        assert not self.errors, self.errors


@pytest.fixture(params=list(SCREENS))
def screen(request: pytest.FixtureRequest, browser: Any, cv_server: Server) -> Iterator[Screen]:
    width, height, zone = SCREENS[request.param]
    ctx = browser.new_context(
        viewport={"width": width, "height": height}, timezone_id=zone, locale="en-US"
    )
    ctx.set_default_timeout(UI_TIMEOUT_MS)
    page = ctx.new_page()
    s = Screen(request.param, zone, page, cv_server)
    page.on("console", lambda m: m.type == "error" and s.errors.append(m.text))
    page.on("pageerror", lambda exc: s.errors.append(str(exc)))
    try:
        yield s
    finally:
        with contextlib.suppress(Exception):
            ctx.close()


def test_dashboard_scripts_are_modules_served_as_javascript(cv_server: Server) -> None:
    index = requests.get(cv_server.url("/login"), timeout=10)
    assert '<script type="module" src="/static/app.js">' in index.text
    scripts = sorted(p.relative_to(STATIC).as_posix() for p in STATIC.rglob("*.js"))
    assert {"app.js", "api.js", "router.js", "chart.js", "pages/analytics.js"} <= set(scripts)
    for name in scripts:
        r = requests.get(cv_server.url(f"/static/{name}"), timeout=10)
        assert r.status_code == 200, name
        assert r.headers["content-type"].split(";")[0] == "text/javascript", (name, r.headers)
        # revalidated on each load: never an upgraded page with modules cached from before
        assert r.headers.get("cache-control") == "no-cache", (name, r.headers)
        again = requests.get(
            cv_server.url(f"/static/{name}"),
            headers={"If-None-Match": r.headers["etag"]},
            timeout=10,
        )
        assert again.status_code == 304, name


def test_login(screen: Screen) -> None:
    from playwright.sync_api import expect

    screen.goto("/login")
    expect(screen.page.get_by_role("heading", name="Welcome back")).to_be_visible()
    expect(screen.page.get_by_role("button", name="Log in")).to_be_visible()
    screen.shot("login")


def test_register(screen: Screen) -> None:
    from playwright.sync_api import expect

    screen.goto("/register")
    expect(screen.page.get_by_role("heading", name="Create your account")).to_be_visible()
    expect(screen.page.get_by_text("At least 8 characters.")).to_be_visible()
    screen.shot("register")


def test_groups_empty_state_button(screen: Screen) -> None:
    from playwright.sync_api import expect

    screen.register()
    screen.goto("/groups")
    button = screen.page.get_by_role("button", name="Create your first group")
    expect(button).to_be_visible()
    box = button.bounding_box()
    assert box["height"] <= 44 and box["width"] <= 260, box  # a button, not a banner
    look = button.evaluate(
        """b => {
          const svg = b.querySelector("svg"), r = svg.getBoundingClientRect();
          return {w: r.width, h: r.height, stroke: getComputedStyle(svg).stroke,
                  bg: getComputedStyle(b).backgroundColor};
        }"""
    )
    assert 10 <= look["w"] <= 24 and 10 <= look["h"] <= 24, look  # sized like the others
    assert look["stroke"] not in ("none", look["bg"]), look  # drawn, and not in the button's colour
    screen.shot("groups-empty")
    button.click()
    expect(screen.page.locator("dialog[open]")).to_be_visible()


def test_groups_with_groups(screen: Screen) -> None:
    from playwright.sync_api import expect

    screen.register()
    screen.call("POST", "/votes/", {"name": "article-likes", "type": "single"})
    screen.call("POST", "/votes/", {"name": "comment-votes", "type": "single"})
    screen.call("POST", "/votes/", {"name": "product-stars", "type": "range", "start": 1, "end": 5})
    screen.goto("/groups")
    expect(screen.page.locator("tbody tr")).to_have_count(3)
    expect(screen.page.locator(".pager")).to_contain_text("3 groups · page 1 of 1")
    screen.shot("groups")


def test_group_detail_snippet_uses_variant(screen: Screen) -> None:
    from playwright.sync_api import expect

    screen.register()
    group = screen.call("POST", "/votes/", {"name": "article-likes", "type": "single"})
    screen.goto(f"/groups/{group['id']}")
    snippet = screen.page.locator("#snippet")
    expect(snippet).to_contain_text('variant="like"')
    screen.page.locator("#preview click-vote .w[aria-busy=false]").wait_for()
    screen.page.locator('#variant-seg button[data-variant="updown"]').click()
    expect(snippet).to_contain_text('variant="updown"')
    text = snippet.get_attribute("data-text")
    assert re.search(r'<click-vote key="pb_\w+" group="article-likes" item="demo-item" ', text)
    assert " style=" not in text, text
    preview = screen.page.locator("#preview click-vote")
    assert preview.get_attribute("variant") == "updown"
    preview.locator(".w[aria-busy=false]").wait_for()
    preview.locator("button.up").click()
    expect(preview.locator(".score")).to_have_text("1")
    expect(screen.page.locator("#items .chip")).to_have_text(["demo-item · 1"])
    screen.shot("group")


def test_settings(screen: Screen) -> None:

    screen.register()
    receiver = Receiver().start()
    try:
        settings_with_webhook(screen, receiver)
    finally:
        receiver.stop()


def received(receiver: Receiver, n: int) -> None:
    deadline = time.monotonic() + 10
    while len(receiver.received) < n and time.monotonic() < deadline:
        time.sleep(0.05)


def settings_with_webhook(screen: Screen, receiver: Receiver) -> None:
    """A webhook with one test event delivered (the log shows it); then set from the form
    with a generated secret, which signs the next test event."""
    from playwright.sync_api import expect

    secret = "whsec-screen-0123456789"
    screen.call("PUT", "/settings/webhook", {"url": receiver.url, "secret": secret})
    sent = screen.call("POST", "/settings/webhook/test", {})["id"]
    received(receiver, 1)
    assert [e["id"] for e in receiver.events(secret)] == [sent]
    screen.goto("/settings")
    page = screen.page
    expect(page.locator("#public-key")).to_have_value(re.compile(r"^pb_\w{32}$"))
    expect(page.locator("#id-signed")).to_be_checked()
    expect(page.locator("#webhook-url")).to_have_value(receiver.url)
    expect(page.locator("#webhook-secret")).to_have_value("")  # write-only: never shown
    expect(page.locator("#webhook-max-pending")).to_have_value("100000")  # the installation's
    expect(page.locator("#webhook-batch-size")).to_have_value("1")  # one event per POST
    expect(page.locator("#webhook-deliveries tbody tr")).to_have_count(1)
    expect(page.locator("#webhook-deliveries tbody tr")).to_contain_text(sent)
    screen.shot("settings")
    page.locator("#webhook-url").fill("ftp://example.com/")
    page.locator("#webhook-form button[type=submit]").click()
    expect(page.locator('#webhook-form .field[data-field="url"] .err')).to_contain_text(
        "http:// or https://"
    )
    page.locator("#webhook-url").fill(receiver.url)
    page.locator("#webhook-max-pending").fill("0")
    page.locator("#webhook-form button[type=submit]").click()
    expect(page.locator('#webhook-form .field[data-field="maxPending"] .err')).to_be_visible()
    page.locator("#webhook-max-pending").fill("3")
    page.locator("#webhook-batch-size").fill("4")
    page.locator("#webhook-generate").click()
    generated = page.locator("#webhook-secret").input_value()
    assert re.fullmatch(r"whsec_[0-9a-f]{64}", generated), generated
    page.locator("#webhook-form button[type=submit]").click()
    expect(page.locator(".toast", has_text="Webhook saved")).to_be_visible()
    expect(page.locator("#webhook-secret")).to_have_value("")
    page.locator("#webhook-test").click()
    expect(page.locator(".toast", has_text="Test event queued")).to_be_visible()
    received(receiver, 2)
    assert len(receiver.received) == 2
    last = receiver.received[-1]
    assert verify(generated, last.headers, last.body) and last.event["type"] == "batch"
    assert [e["type"] for e in last.event["events"]] == ["test"]
    expect(page.locator("#webhook-deliveries tbody tr")).to_have_count(2)
    hook = screen.call("GET", "/settings/webhook", None)
    assert (hook["maxPending"], hook["batchSize"]) == (3, 4)
    webhook_discards_shown(screen, receiver)


def webhook_discards_shown(screen: Screen, receiver: Receiver) -> None:
    """The receiver down and more events than the bound (3): the log shows the discard."""
    from playwright.sync_api import expect

    receiver.stop()
    for _ in range(6):
        screen.call("POST", "/settings/webhook/test", {})
    deadline = time.monotonic() + 10
    while screen.call("GET", "/settings/webhook", None)["pending"] > 3:
        assert time.monotonic() < deadline, "the outbox never came back to its bound"
        time.sleep(0.05)
    screen.page.locator("#webhook-refresh").click()
    shown = screen.page.locator("#webhook-deliveries tr.discarded").first
    expect(shown).to_contain_text("oldest discarded")
    expect(shown).to_contain_text("events")


def x_labels(page: Any) -> list[str]:
    return [str(t) for t in page.locator("#chart svg text[text-anchor=middle]").all_text_contents()]


def test_analytics_axis_names_each_day_once(screen: Screen) -> None:
    from playwright.sync_api import expect

    screen.register()
    group = screen.call("POST", "/votes/", {"name": "article-likes", "type": "single"})
    screen.goto(f"/groups/{group['id']}")  # one vote, through the live preview
    preview = screen.page.locator("#preview click-vote")
    preview.locator(".w[aria-busy=false]").wait_for()
    preview.locator("button.like").click()
    expect(preview.locator(".n")).to_have_text("1")
    screen.goto("/analytics")
    chart = screen.page.locator("#chart")
    for range_ in ("1d", "30d", "1y", "7d"):  # 7d last: the page's default, in the screenshot
        screen.page.locator(f'#range-seg button[data-range="{range_}"]').click()
        expect(chart).to_have_attribute("data-total", "1")
        labels = x_labels(screen.page)
        assert len(labels) >= 2, (range_, labels)
        assert len(set(labels)) == len(labels), (range_, labels)
    if screen.name == "desktop":  # room for a label on each of the 7 days
        assert len(x_labels(screen.page)) >= 6, x_labels(screen.page)
    expect(screen.page.locator("#stats .stat").first.locator(".value")).to_have_text("1")
    if screen.zone == "Asia/Kolkata":  # hours start at half past there
        expect(screen.page.locator("#stats .stat").nth(1).locator(".sub")).to_contain_text(":30")
    screen.shot("analytics")
