"""The dashboard single-page app, driven like a person would in Chromium."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from clickvote.client import Client, proof_of_work

from .conftest import Server, screenshot

pytestmark = pytest.mark.host


def field_error(page: Any, field: str) -> Any:
    return page.locator(f'.field[data-field="{field}"] .err')


def test_dashboard_end_to_end(cv_server: Server, new_page: Any) -> None:
    from playwright.sync_api import expect

    page = new_page()
    email = f"owner-{uuid.uuid4().hex[:8]}@example.com"
    password = "s3cret-passphrase"

    # unknown session: the app sends us to log in, never a blank page
    page.goto(cv_server.url("/analytics"))
    expect(page).to_have_url(cv_server.url("/login?next=%2Fanalytics"))
    page.get_by_role("link", name="Create an account").click()
    expect(page.get_by_role("heading", name="Create your account")).to_be_visible()

    # validation messages next to the fields
    page.fill("input[name=email]", "not-an-email")
    page.fill("input[name=password]", "short")
    page.get_by_role("button", name="Create account").click()
    expect(field_error(page, "email")).to_contain_text("valid email")
    expect(field_error(page, "password")).to_contain_text("8 characters")
    screenshot(page, "dash-register-errors")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.get_by_role("button", name="Create account").click()

    # an empty groups page invites to create one
    expect(page).to_have_url(cv_server.url("/groups"))
    expect(page.get_by_text("No vote groups yet")).to_be_visible()
    page.get_by_role("button", name="New group").click()
    dialog = page.locator("dialog[open]")
    dialog.locator("input[name=name]").fill("x")  # too short: the server's 422, by the field
    dialog.get_by_role("button", name="Create group").click()
    expect(dialog.locator('.field[data-field="name"] .err')).to_contain_text("at least 2")
    dialog.locator("select[name=type]").select_option("range")
    dialog.locator("input[name=start]").fill("5")
    dialog.locator("input[name=end]").fill("1")
    dialog.locator("input[name=name]").fill("ratings")
    dialog.get_by_role("button", name="Create group").click()
    expect(dialog.locator('.field[data-field="start"] .err')).to_contain_text("less than end")
    screenshot(page, "dash-group-dialog-errors")
    dialog.locator("select[name=type]").select_option("single")
    dialog.locator("input[name=name]").fill("article-likes")
    dialog.get_by_role("button", name="Create group").click()

    # group page: the snippet and a live preview using the real embed
    expect(page.get_by_role("heading", name="article-likes")).to_be_visible()
    snippet = page.locator("#snippet")
    expect(snippet).to_contain_text(f'<script src="{cv_server.base}/embed.js" defer></script>')
    expect(snippet).to_contain_text('group="article-likes"')
    expect(snippet).to_contain_text('key="pb_')
    expect(snippet).to_contain_text('variant="like"')
    page.locator("#preview click-vote .w[aria-busy=false]").wait_for()
    page.locator("#preview click-vote button.like").click()
    expect(page.locator("#preview click-vote .n")).to_have_text("1")
    page.locator('#variant-seg button[data-variant="updown"]').click()
    expect(snippet).to_contain_text('variant="updown"')
    page.locator("#preview click-vote .w[aria-busy=false]").wait_for()
    expect(page.locator("#preview click-vote .score")).to_have_text("1")
    expect(page.locator("#items .chip")).to_have_text(["demo-item · 1"])
    screenshot(page, "dash-group")

    # a second group with the same name: 409, shown by the name field
    page.get_by_role("link", name="Vote groups").first.click()
    expect(page.locator("tbody tr")).to_have_count(1)
    row = page.locator("tbody tr").first
    expect(row.locator("td").nth(2)).to_have_text("1")  # clicks
    expect(row.locator("td").nth(3)).to_have_text("1")  # score
    page.get_by_role("button", name="New group").click()
    dialog = page.locator("dialog[open]")
    dialog.locator("input[name=name]").fill("article-likes")
    dialog.get_by_role("button", name="Create group").click()
    expect(dialog.locator('.field[data-field="name"] .err')).to_be_visible()
    dialog.get_by_role("button", name="Cancel").click()
    screenshot(page, "dash-groups")

    # analytics: the vote shows up in the chart
    page.get_by_role("link", name="Analytics").first.click()
    chart = page.locator("#chart svg")
    expect(chart).to_be_visible()
    expect(page.locator("#chart")).to_have_attribute("data-total", "1")
    expect(page.locator("#stats .stat").first.locator(".value")).to_have_text("1")
    assert page.locator("#chart .bar, #chart .line").count() > 0
    page.locator('#range-seg button[data-range="1d"]').click()
    expect(page.locator("#chart")).to_have_attribute("data-total", "1")
    page.locator("#f-group").select_option("article-likes")
    page.locator("#f-item option", has_text="demo-item").wait_for(state="attached")
    page.locator("#f-item").select_option("demo-item")
    expect(page.locator("#chart")).to_have_attribute("data-total", "1")
    expect(page.locator("#chart-title")).to_have_text("article-likes · demo-item")
    page.locator("#chart #hit").hover()
    screenshot(page, "dash-analytics")
    page.locator('#range-seg button[data-range="1y"]').click()
    expect(page.locator("#chart")).to_have_attribute("data-total", "1")

    # settings: rename the organisation, keys with copy buttons, rotation
    page.get_by_role("link", name="Settings").first.click()
    public = page.locator("#public-key")
    expect(public).to_have_value(lambda_re("^pb_[A-Za-z0-9]{32}$"))
    expect(page.locator("#secret-key")).to_have_value(lambda_re("^sk_[A-Za-z0-9]{32}$"))
    old_key = public.input_value()
    page.get_by_role("button", name="Copy Public key").click()
    expect(page.locator(".toast", has_text="Public key copied")).to_be_visible()
    # which voter identities the environment accepts, each with what it protects against
    for kind in ("signed", "token", "unsigned"):
        expect(page.locator(f"#id-{kind}")).to_be_checked()
    expect(page.locator("#identities")).to_contain_text("Only your server")
    expect(page.locator("#identities")).to_contain_text("No protection")
    page.locator("#id-unsigned").uncheck()
    expect(page.locator(".toast", has_text="Saved")).to_be_visible()
    page.reload()
    expect(page.locator("#id-unsigned")).not_to_be_checked()
    expect(page.locator("#id-token")).to_be_checked()
    assert page.request.get(cv_server.url("/settings/")).json()["identities"] == ["signed", "token"]
    page.fill("#org-form input[name=name]", "Acme Widgets")
    page.locator("#org-form").get_by_role("button", name="Save").click()
    expect(page.locator("#org-switch option:checked")).to_have_text("Acme Widgets")
    screenshot(page, "dash-settings")
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Rotate keys").click()
    expect(public).not_to_have_value(old_key)

    # environment switcher: production has its own (empty) groups
    page.locator("#env-switch").select_option(label="production")
    expect(page.locator(".env-pill")).to_have_text("production")
    page.get_by_role("link", name="Vote groups").first.click()
    expect(page.get_by_text("No vote groups yet")).to_be_visible()
    page.locator("#env-switch").select_option(label="dev")
    expect(page.locator("tbody tr")).to_have_count(1)

    # organisation switcher: a new organisation starts empty; switching back restores ours
    page.once("dialog", lambda d: d.accept("Second Org"))
    page.locator("#org-switch").select_option("__new__")
    expect(page.locator("#org-switch option:checked")).to_have_text("Second Org")
    expect(page.get_by_text("No vote groups yet")).to_be_visible()
    page.locator("#org-switch").select_option(label="Acme Widgets")
    expect(page.locator("#org-switch option:checked")).to_have_text("Acme Widgets")
    expect(page.locator("tbody tr")).to_have_count(1)

    # log out, a wrong password, log back in
    page.locator("#logout").click()
    expect(page).to_have_url(cv_server.url("/login"))
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", "wrong password!")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#form-error")).to_contain_text("Wrong email or password")
    screenshot(page, "dash-login-error")
    page.fill("input[name=password]", password)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(cv_server.url("/analytics"))
    expect(page.locator("#chart")).to_have_attribute("data-total", "1")
    assert not new_page.errors, new_page.errors


def test_dashboard_small_screen_and_pagination(cv_server: Server, new_page: Any) -> None:
    from playwright.sync_api import expect

    page = new_page((390, 844))
    page.goto(cv_server.url("/register"))
    page.fill("input[name=email]", f"mobile-{uuid.uuid4().hex[:8]}@example.com")
    page.fill("input[name=password]", "s3cret-passphrase")
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(cv_server.url("/groups"))
    csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    for i in range(12):
        r = page.request.post(
            cv_server.url("/votes/"),
            data={"name": f"group-{i:02d}", "type": "single"},
            headers={"X-CSRF-Token": csrf},
        )
        assert r.ok, r.text()
    page.reload()
    expect(page.locator("tbody tr")).to_have_count(10)
    expect(page.locator(".pager")).to_contain_text("12 groups · page 1 of 2")
    page.get_by_role("button", name="Next →").click()
    expect(page.locator("tbody tr")).to_have_count(2)
    screenshot(page, "dash-mobile-groups")
    page.locator("#burger").click()
    expect(page.locator(".side")).to_be_in_viewport()
    page.get_by_role("link", name="Analytics").first.click()
    expect(page.locator("#chart svg")).to_be_visible()
    screenshot(page, "dash-mobile-analytics")
    page.goto(cv_server.url("/groups/does-not-exist"))
    expect(page.locator(".alert.error")).to_contain_text("does not exist")
    assert not new_page.errors, new_page.errors


def signed_in(cv_server: Server, new_page: Any, who: str, group: str = "") -> tuple[Any, str]:
    """A page signed in as a new owner (`who` starts its email) and, if `group` is named, a
    `single` group of that name: (page, the group's id or "")."""
    page = new_page()
    r = page.request.post(
        cv_server.url("/auth/register"),
        data={"email": f"{who}-{uuid.uuid4().hex[:8]}@example.com", "password": "s3cret-pass"},
    )
    assert r.ok, r.text()
    if not group:
        return page, ""
    csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    r = page.request.post(
        cv_server.url("/votes/"),
        data={"name": group, "type": "single"},
        headers={"X-CSRF-Token": csrf},
    )
    assert r.ok, r.text()
    return page, str(r.json()["id"])


def answered(status: int, message: str) -> Callable[[Any], None]:
    """A route handler answering as the API refuses: {message, statusCode}."""
    body = json.dumps({"message": message, "statusCode": status})
    return lambda route: route.fulfill(status=status, content_type="application/json", body=body)


def test_a_panel_that_fails_to_load_says_why_alike_on_every_page(
    cv_server: Server, new_page: Any
) -> None:
    """A panel's GET answered 500 on three pages: each shows the same error box with the
    API's message and a "Try again" that loads the panel once the API answers again; a 404
    has no retry (asking again won't help); a 401 goes to the login page."""
    from playwright.sync_api import expect

    page, _ = signed_in(cv_server, new_page, "panel", "article-likes")
    message = "Storage is busy, said the API"
    busy = answered(500, message)
    cases = [  # (page, the GET that fails (its URL's start), its panel, what it shows loaded)
        ("/groups", "/votes/?page=1&limit=10", "#groups-box", "tbody tr"),
        ("/settings", "/settings/webhook", "#webhook", "#webhook-url"),
        ("/analytics", "/analytics/data?", "#chart", "#chart[data-total]"),
    ]
    boxes = []
    for where, get, panel, loaded in cases:

        def failing(url: str, get: str = get) -> bool:
            return url.startswith(cv_server.url(get))

        page.route(failing, busy)
        page.goto(cv_server.url(where))
        alert = page.locator(panel).locator(".alert.error[role=alert]")
        expect(alert).to_have_text(message)
        expect(page.locator(loaded)).to_have_count(0)
        boxes.append(alert.evaluate("(el) => el.parentElement.innerHTML"))
        screenshot(page, "dash-panel-error" + where.replace("/", "-"))
        page.unroute(failing, busy)
        page.locator(panel).get_by_role("button", name="Try again").click()
        expect(page.locator(loaded).first).to_be_visible()
        expect(alert).to_have_count(0)
    assert len(set(boxes)) == 1, boxes  # the same box, word for word, on every page

    page.goto(cv_server.url("/groups/does-not-exist"))
    expect(page.locator(".alert.error")).to_contain_text("does not exist")
    expect(page.get_by_role("link", name="← Vote groups")).to_be_visible()
    expect(page.get_by_role("button", name="Try again")).to_have_count(0)
    screenshot(page, "dash-panel-error-404")

    page.route(cv_server.url("/settings/webhook"), answered(401, "Log in first"))
    page.goto(cv_server.url("/settings"))
    expect(page).to_have_url(cv_server.url("/login?next=%2Fsettings"))
    expect(page.get_by_role("heading", name="Welcome back")).to_be_visible()
    assert not new_page.errors, new_page.errors


def test_a_panel_draws_only_its_newest_answer(cv_server: Server, new_page: Any) -> None:
    """Ranges clicked faster than the API answers: the chart shows the last one clicked, not
    an older answer (nor an older failure) that comes after it."""
    from playwright.sync_api import expect

    page, _ = signed_in(cv_server, new_page, "newest")
    held: list[Any] = []  # the 30d and 1y GETs, kept unanswered until 1d is drawn
    page.route(re.compile(r"/analytics/data\?dateRange=(30d|1y)$"), lambda r: held.append(r))
    page.goto(cv_server.url("/analytics"))
    sub = page.locator("#chart-sub")
    expect(sub).to_have_text("Last 7 days · hourly totals")
    for range_ in ("30d", "1y"):
        page.locator(f'#range-seg button[data-range="{range_}"]').click()
    deadline = time.monotonic() + 10
    while len(held) < 2:
        assert time.monotonic() < deadline, held
        page.wait_for_timeout(20)
    page.locator('#range-seg button[data-range="1d"]').click()
    expect(sub).to_have_text("Last 24 hours · hourly totals")
    held[0].continue_()
    held[1].fulfill(status=500, content_type="application/json", body='{"message": "late"}')
    page.wait_for_load_state("networkidle")
    expect(sub).to_have_text("Last 24 hours · hourly totals")
    expect(page.locator("#chart[data-total] > svg")).to_have_count(1)
    expect(page.locator("#chart .alert")).to_have_count(0)
    assert not new_page.errors, new_page.errors


def lambda_re(pattern: str) -> Any:
    return re.compile(pattern)


def test_group_page_lists_items_as_votes_arrive_from_other_pages(
    cv_server: Server, new_page: Any
) -> None:
    from playwright.sync_api import expect

    page, group_id = signed_in(cv_server, new_page, "items", "article-likes")
    url = cv_server.url(f"/groups/{group_id}")
    page.goto(url)
    expect(page.locator("#items")).to_contain_text("No votes yet")
    page.locator("#preview click-vote .w[aria-busy=false]").wait_for()

    other = page.context.new_page()  # another tab of the same owner votes on the item
    other.goto(url)
    other.locator("#preview click-vote .w[aria-busy=false]").wait_for()
    other.locator("#preview click-vote button.like").click()
    expect(other.locator("#preview click-vote .n")).to_have_text("1")
    expect(page.locator("#preview click-vote .n")).to_have_text("1")  # live in the first tab
    expect(page.locator("#items .chip")).to_have_text(["demo-item · 1"])  # and in its list
    assert not new_page.errors, new_page.errors


def test_reactions_group_from_the_dialog(cv_server: Server, new_page: Any) -> None:
    from playwright.sync_api import expect

    page = new_page()
    email = f"owner-{uuid.uuid4().hex[:8]}@example.com"
    page.goto(cv_server.url("/register"))
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", "s3cret-passphrase")
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(cv_server.url("/groups"))
    page.get_by_role("button", name="New group").click()
    dialog = page.locator("dialog[open]")
    dialog.locator("input[name=name]").fill("reacts")
    dialog.locator("select[name=type]").select_option("reactions")
    dialog.locator("textarea[name=reactions]").fill("up Thumbs up\nparty\n")
    dialog.locator("input[name=maxPerVoter]").fill("2")
    dialog.get_by_role("button", name="Create group").click()
    # the group page's preview is the reactions embed, in the owner's order and labels
    expect(page.locator("click-vote button.rx")).to_have_count(2, timeout=15_000)
    expect(page.get_by_role("button", name="Thumbs up, 0")).to_be_visible()
    made = page.evaluate("fetch('/votes/?limit=10').then((r) => r.json())")["items"][0]
    assert made["type"] == "reactions" and made["maxPerVoter"] == 2
    assert made["reactions"] == [
        {"id": "up", "label": "Thumbs up"},
        {"id": "party", "label": "party"},
    ]
    assert not new_page.errors, new_page.errors


def test_abuse_layers_in_settings_and_their_refusals_in_analytics(
    cv_server: Server, new_page: Any
) -> None:
    from playwright.sync_api import expect

    page = new_page()
    email = f"abuse-{uuid.uuid4().hex[:8]}@example.com"
    r = page.request.post(
        cv_server.url("/auth/register"), data={"email": email, "password": "s3cret-passphrase"}
    )
    assert r.ok, r.text()
    page.goto(cv_server.url("/settings"))
    form = page.locator("#abuse-form")
    expect(form.locator("#abuse-ipVoters")).to_have_value("20")
    expect(form.locator("#abuse-ipWindow")).to_have_value("3600")
    expect(form.locator("#abuse-powDifficulty")).to_have_value("0")
    expect(page.locator("#abuse-rate")).to_contain_text("then 5 per second")
    expect(form).to_contain_text("@clickvote/react 0.0.8")
    form.locator("#abuse-powDifficulty").fill("40")  # too much: the server's 422, by the field
    form.get_by_role("button", name="Save").click()
    expect(field_error(page, "powDifficulty")).to_contain_text("at most 24")
    form.locator("#abuse-powDifficulty").fill("10")
    form.locator("#abuse-ipVoters").fill("1")
    form.locator("#abuse-rateVoterPerSec").fill("2.5")
    form.get_by_role("button", name="Save").click()
    expect(page.locator(".toast", has_text="Saved")).to_be_visible()
    screenshot(page, "dash-settings-abuse")
    settings = page.request.get(cv_server.url("/settings/")).json()
    assert settings["abuse"]["powDifficulty"] == 10 and settings["abuse"]["ipVoters"] == 1
    assert settings["abuse"]["rateVoterPerSec"] == 2.5

    csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    page.request.post(
        cv_server.url("/votes/"),
        data={"name": "guarded", "type": "single"},
        headers={"X-CSRF-Token": csrf},
    )
    c = Client(cv_server.base, timeout=15)
    try:
        vote = {"id": "guarded", "voteTo": "p", "value": 1, "key": settings["publicKey"]}
        assert c.call("vote", {**vote, "userId": "a"})["error"]["code"] == "proof_of_work_required"
        work = proof_of_work(c.call("challenge", {"key": settings["publicKey"]}))
        assert c.call("vote", {**vote, "userId": "a", "pow": work})["ok"]
        assert c.call("vote", {**vote, "userId": "b"})["error"]["code"] == "too_many_voters"
    finally:
        c.close()
    page.get_by_role("link", name="Analytics").first.click()
    table = page.locator("#refusal-table")
    expect(table.locator('td[data-layer="proofOfWork"]')).to_have_text("1")
    expect(table.locator('td[data-layer="ipWindow"]')).to_have_text("1")
    expect(table.locator('td[data-layer="token"]')).to_have_text("0")
    screenshot(page, "dash-analytics-refusals")
    assert not new_page.errors, new_page.errors
