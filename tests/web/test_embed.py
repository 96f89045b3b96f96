"""The <click-vote> web component embedded in a plain page of ANOTHER origin (another port)."""

from __future__ import annotations

import hashlib
import hmac
import html
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from services import PostgresServer

from clickvote.client import Client, proof_of_work

from .conftest import Account, Server, Site, register, running_server, screenshot

pytestmark = pytest.mark.host


def embed_page(server: Server, tags: str, title: str = "Blog post") -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<script src="{server.base}/embed.js" defer></script>
<style>body{{font:16px system-ui;margin:40px;max-width:640px}} .row{{margin:18px 0}}</style>
</head><body><h1>{html.escape(title)}</h1><p>Some article text.</p>
{tags}
</body></html>"""


def tag(acc: Account, group: str, item: str, variant: str, extra: str = "", tid: str = "cv") -> str:
    return (
        f'<div class="row"><click-vote id="{tid}" key="{acc.public_key}" group="{group}" '
        f'item="{item}" variant="{variant}" {extra}></click-vote></div>'
    )


def widget(page: Any, tid: str = "cv") -> Any:
    return page.locator(f"click-vote#{tid}")


def wait_loaded(page: Any, tid: str = "cv") -> None:
    page.locator(f"click-vote#{tid} .w[aria-busy=false]").wait_for(timeout=15_000)


def count_text(page: Any, tid: str = "cv") -> str:
    return str(widget(page, tid).locator(".n").first.inner_text()).strip()


def expect_count(page: Any, text: str, tid: str = "cv") -> None:
    from playwright.sync_api import expect

    expect(widget(page, tid).locator(".n").first).to_have_text(text, timeout=10_000)


@pytest.mark.parametrize("cv_server", [1, 2], indirect=True, ids=["1-worker", "2-workers"])
def test_like_live_across_pages_and_origins(
    cv_server: Server, site: Site, account: Account, new_page: Any
) -> None:
    group = account.group("single")
    url = site.page("like.html", embed_page(cv_server, tag(account, group, "post-1", "like")))
    assert not url.startswith(cv_server.base)  # a different origin: another port
    a, b = new_page(), new_page()  # two visitors (own storage: own anonymous voter tokens)
    a.goto(url)
    b.goto(url)
    wait_loaded(a)
    wait_loaded(b)
    expect_count(a, "0")
    expect_count(b, "0")

    like_a = widget(a).locator("button.like")
    like_b = widget(b).locator("button.like")
    assert like_a.get_attribute("aria-label").startswith("Like")
    like_a.click()
    expect_count(a, "1")
    expect_count(b, "1")  # live, pushed to the other page
    assert like_a.get_attribute("aria-pressed") == "true"
    assert like_b.get_attribute("aria-pressed") == "false"

    like_b.focus()  # keyboard works too
    b.keyboard.press("Enter")
    expect_count(a, "2")
    expect_count(b, "2")

    like_a.click()  # un-like
    expect_count(b, "1")
    expect_count(a, "1")
    assert like_a.get_attribute("aria-pressed") == "false"

    # the anonymous voter token survives a reload: b still sees its own like highlighted
    b.reload()
    wait_loaded(b)
    expect_count(b, "1")
    assert widget(b).locator("button.like").get_attribute("aria-pressed") == "true"
    screenshot(b, "embed-like")
    assert not new_page.errors, new_page.errors


def test_two_widgets_of_one_item_on_a_page_stay_in_step(
    cv_server: Server, site: Site, account: Account, new_page: Any
) -> None:
    """They share one connection, and the server answers a vote to that connection in its
    acknowledgement only: the widget that did not vote learns it from there."""
    group = account.group("single")
    tags = tag(account, group, "post-twice", "like", tid="top") + tag(
        account, group, "post-twice", "like", tid="bottom"
    )
    url = site.page("twice.html", embed_page(cv_server, tags))
    a, b = new_page(), new_page()
    for p in (a, b):
        p.goto(url)
        wait_loaded(p, "top")
        wait_loaded(p, "bottom")
    widget(a, "top").locator("button.like").click()
    for p in (a, b):
        expect_count(p, "1", "top")
        expect_count(p, "1", "bottom")
    assert widget(a, "bottom").locator("button.like").get_attribute("aria-pressed") == "true"
    assert widget(b, "bottom").locator("button.like").get_attribute("aria-pressed") == "false"
    widget(a, "bottom").locator("button.like").click()  # un-like from the other one
    for p in (a, b):
        expect_count(p, "0", "top")
        expect_count(p, "0", "bottom")
    assert widget(a, "top").locator("button.like").get_attribute("aria-pressed") == "false"
    assert not new_page.errors, new_page.errors


def test_double_click_counts_once(
    cv_server: Server, site: Site, account: Account, new_page: Any
) -> None:
    group = account.group("single")
    url = site.page("dbl.html", embed_page(cv_server, tag(account, group, "post-2", "like")))
    a, b = new_page(), new_page()
    a.goto(url)
    b.goto(url)
    wait_loaded(a)
    wait_loaded(b)
    widget(a).locator("button.like").dblclick()
    expect_count(b, "1")
    wait_loaded(a)
    a.wait_for_timeout(500)
    assert count_text(a) == "1"
    assert count_text(b) == "1"


def test_updown_and_stars_live(
    cv_server: Server, site: Site, account: Account, new_page: Any
) -> None:
    updown = account.group("single")
    stars = account.group("range", 1, 5)
    tags = tag(account, updown, "comment-9", "updown", tid="ud") + tag(
        account, stars, "product-7", "stars", tid="st"
    )
    url = site.page("mixed.html", embed_page(cv_server, tags, "Product page"))
    a, b = new_page(), new_page()
    a.goto(url)
    b.goto(url)
    for p in (a, b):
        wait_loaded(p, "ud")
        wait_loaded(p, "st")
    expect_count(a, "0", "ud")
    expect_count(b, "No votes yet", "st")

    widget(a, "ud").locator("button.up").click()
    expect_count(b, "1", "ud")
    widget(b, "ud").locator("button.down").click()
    expect_count(a, "0", "ud")
    expect_count(b, "0", "ud")
    assert widget(a, "ud").locator("button.up").get_attribute("aria-pressed") == "true"
    assert widget(b, "ud").locator("button.down").get_attribute("aria-pressed") == "true"
    widget(b, "ud").locator("button.down").click()  # remove the downvote
    expect_count(a, "1", "ud")

    star4 = widget(a, "st").locator('button[aria-label="4 of 5 stars"]')
    star4.click()
    expect_count(b, "4 · 1 vote", "st")
    widget(b, "st").locator('button[aria-label="2 of 5 stars"]').click()
    expect_count(a, "3 · 2 votes", "st")  # exact mean (4 + 2) / 2
    expect_count(b, "3 · 2 votes", "st")
    assert star4.get_attribute("aria-pressed") == "true"
    assert (
        widget(b, "st").locator('button[aria-label="4 of 5 stars"]').get_attribute("aria-pressed")
        == "false"
    )
    screenshot(a, "embed-updown-stars")
    assert not new_page.errors, new_page.errors


def test_snippets_of_earlier_versions_with_style_still_work(
    cv_server: Server, site: Site, account: Account, new_page: Any
) -> None:
    """Earlier dashboards wrote the variant into the global `style` attribute: such pages
    keep their variant; `variant` wins where a page has both."""
    group = account.group("single")
    base = f'key="{account.public_key}" group="{group}" item="old-page"'
    tags = (
        f'<click-vote id="old" {base} style="updown"></click-vote>'
        f'<click-vote id="both" {base} variant="like" style="updown"></click-vote>'
    )
    page = new_page()
    page.goto(site.page("old-snippet.html", embed_page(cv_server, tags)))
    wait_loaded(page, "old")
    wait_loaded(page, "both")
    widget(page, "old").locator("button.up").click()
    expect_count(page, "1", "old")
    assert widget(page, "both").locator("button.up").count() == 0
    expect_count(page, "1", "both")
    assert widget(page, "both").locator("button.like").count() == 1
    assert not new_page.errors, new_page.errors


def test_signed_user_sees_own_vote_in_other_tab(
    cv_server: Server, site: Site, account: Account, new_page: Any
) -> None:
    group = account.group("single")
    secret = account.call("GET", "/settings/")["secretKey"]
    sig = hmac.new(secret.encode(), b"user-42", hashlib.sha256).hexdigest()
    extra = f'user-id="user-42" signature="{sig}"'
    url = site.page(
        "signed.html", embed_page(cv_server, tag(account, group, "post-3", "like", extra))
    )
    a, b = new_page(), new_page()  # same signed user in two separate browsers
    a.goto(url)
    b.goto(url)
    wait_loaded(a)
    wait_loaded(b)
    widget(a).locator("button.like").click()
    expect_count(b, "1")
    from playwright.sync_api import expect

    expect(widget(b).locator("button.like")).to_have_attribute("aria-pressed", "true")

    bad = site.page(
        "forged.html",
        embed_page(
            cv_server, tag(account, group, "post-3", "like", 'user-id="user-42" signature="00"')
        ),
    )
    c = new_page()
    c.goto(bad)
    widget(c).locator("button.like").click()
    expect(widget(c).locator(".err")).to_contain_text("signature", timeout=10_000)
    c.wait_for_timeout(300)
    expect_count(a, "1")  # the forged vote did not count


def test_errors_are_shown_without_losing_state(
    cv_server: Server, site: Site, account: Account, new_page: Any
) -> None:
    from playwright.sync_api import expect

    group = account.group("single")
    tags = tag(account, "no-such-group", "x", "like", tid="missing") + tag(
        account, group, "post-4", "like", tid="cv"
    )
    url = site.page("errors.html", embed_page(cv_server, tags))
    a = new_page()
    a.goto(url)
    expect(widget(a, "missing").locator(".err")).to_contain_text("no vote group", timeout=10_000)
    wait_loaded(a)
    widget(a).locator("button.like").click()
    expect_count(a, "1")
    # a burst of clicks trips the per-voter rate limit: a message, and the count stays exact
    like = widget(a).locator("button.like")
    err = widget(a).locator(".err")
    for _ in range(60):
        like.click()
        a.locator("click-vote#cv .w[aria-busy=false]").wait_for(timeout=10_000)
        if err.inner_text().strip():
            break
    expect(err).to_contain_text("slow down", timeout=5_000)
    screenshot(a, "embed-errors")
    shown = int(count_text(a))
    a.reload()
    wait_loaded(a)
    assert int(count_text(a)) == shown


NO_WEBSOCKETS = {
    "missing": "delete window.WebSocket; window.WebSocket = undefined;",
    # a proxy that refuses the upgrade: every WebSocket closes without ever opening
    "blocked": "window.WebSocket = function () { var s = this; s.readyState = 3;"
    " setTimeout(function () { if (s.onclose) s.onclose({}); }, 5); };"
    " window.WebSocket.prototype.send = function () {};"
    " window.WebSocket.prototype.close = function () {};",
}


@pytest.mark.parametrize("cv_server", [1, 2], indirect=True, ids=["1-worker", "2-workers"])
@pytest.mark.parametrize("how", sorted(NO_WEBSOCKETS))
def test_without_websockets_the_embed_long_polls(
    cv_server: Server, site: Site, account: Account, new_page: Any, how: str
) -> None:
    """A page where WebSockets are missing or blocked (as behind some proxies) votes and sees
    others' votes live over Engine.IO long-polling; a page with WebSockets sees its votes."""
    group = account.group("single")
    url = site.page("poll.html", embed_page(cv_server, tag(account, group, "polled", "like")))
    polling, ws = new_page(), new_page()
    polling.add_init_script(NO_WEBSOCKETS[how])
    transports: list[str] = []
    polling.on("request", lambda r: transports.append(r.url) if "/socket.io/" in r.url else None)
    polling.goto(url)
    ws.goto(url)
    wait_loaded(polling)
    wait_loaded(ws)
    assert transports and all("transport=polling" in u for u in transports), transports

    widget(polling).locator("button.like").click()
    expect_count(polling, "1")
    expect_count(ws, "1")
    widget(ws).locator("button.like").click()
    expect_count(ws, "2")
    expect_count(polling, "2")  # pushed to the polling page: its waiting GET returned it
    assert widget(polling).locator("button.like").get_attribute("aria-pressed") == "true"
    assert not new_page.errors, new_page.errors


def test_first_frame_from_public_counts_and_light_dom_without_scripts(
    cv_server: Server, site: Site, account: Account, new_page: Any, browser: Any
) -> None:
    """The embed draws the cacheable counts before its socket answers (here: never); a page
    without scripts shows what the site rendered into the element's light DOM instead."""
    group = account.group("single")
    element = (
        f'<div class="row"><click-vote id="cv" key="{account.public_key}" group="{group}" '
        'item="post-ff" style="like"><span class="cv-count">1 like</span></click-vote></div>'
    )
    url = site.page("first.html", embed_page(cv_server, element))
    a = new_page()
    a.goto(url)
    wait_loaded(a)
    widget(a).locator("button.like").click()
    expect_count(a, "1")
    assert not a.locator("click-vote#cv .cv-count").is_visible()  # scripts on: the widget

    b = new_page()
    # no live connection at all: no WebSocket, and long-polling's requests fail
    b.add_init_script("window.WebSocket = undefined;")
    b.route("**/socket.io/**", lambda route: route.abort())
    b.goto(url)
    expect_count(b, "1")
    # still busy: the voter's own state comes from the socket only
    assert widget(b).locator(".w").get_attribute("aria-busy") == "true"

    ctx = browser.new_context(java_script_enabled=False)
    try:
        c = ctx.new_page()
        c.goto(url)
        light = c.locator("click-vote#cv .cv-count")
        assert light.is_visible() and light.inner_text() == "1 like"
    finally:
        ctx.close()
    assert not new_page.errors, new_page.errors


def test_reactions_toggle_live_with_owner_labels(
    cv_server: Server, site: Site, account: Account, new_page: Any
) -> None:
    from playwright.sync_api import expect

    group = f"g-reactions-{account.email[:8]}"
    items = [{"id": "👍", "label": "Like"}, {"id": "<b>", "label": 'Bold & "odd"'}]
    account.call(
        "POST",
        "/votes/",
        {"name": group, "type": "reactions", "reactions": items, "maxPerVoter": 2},
    )
    url = site.page("react.html", embed_page(cv_server, tag(account, group, "p", "reactions")))
    a, b = new_page(), new_page()
    a.goto(url)
    b.goto(url)
    wait_loaded(a)
    wait_loaded(b)

    def button(page: Any, n: int) -> Any:
        return widget(page).locator("button.rx").nth(n)

    assert widget(a).locator("button.rx").count() == 2
    assert button(a, 0).inner_text().replace("\n", "") == "👍0"
    assert button(a, 1).get_attribute("data-r") == "<b>"  # owner text shown as text, not markup
    assert button(a, 1).get_attribute("aria-label") == 'Bold & "odd", 0'
    button(a, 0).click()
    button(a, 1).click()
    expect(button(b, 0).locator(".n")).to_have_text("1", timeout=10_000)  # live elsewhere
    expect(button(b, 1).locator(".n")).to_have_text("1", timeout=10_000)
    expect(button(a, 1)).to_have_attribute("aria-pressed", "true")
    assert button(b, 0).get_attribute("aria-pressed") == "false"
    button(b, 0).click()
    expect(button(a, 0).locator(".n")).to_have_text("2", timeout=10_000)
    button(a, 0).click()  # toggled off
    expect(button(b, 0).locator(".n")).to_have_text("1", timeout=10_000)
    expect(button(a, 0)).to_have_attribute("aria-pressed", "false")
    a.reload()  # the voter's own reactions come back highlighted
    wait_loaded(a)
    expect(button(a, 1)).to_have_attribute("aria-pressed", "true")
    assert button(a, 0).get_attribute("aria-pressed") == "false"
    screenshot(a, "embed-reactions")
    assert not new_page.errors, new_page.errors


def test_proof_of_work_solved_in_a_worker_before_the_first_vote(
    cv_server: Server, site: Site, account: Account, new_page: Any
) -> None:
    """With proof of work on, the embed fetches a challenge as it connects and solves it in a
    Web Worker: its first vote carries the solution, its next ones need none."""
    group = account.group("single")
    account.call("PUT", "/settings/", {"powDifficulty": 12})
    url = site.page("pow.html", embed_page(cv_server, tag(account, group, "post-pow", "like")))
    a = new_page()
    a.goto(url)
    wait_loaded(a)
    like = widget(a).locator("button.like")
    like.click()
    expect_count(a, "1")
    assert like.get_attribute("aria-pressed") == "true"
    wait_loaded(a)
    like.click()  # un-like: the connection is trusted now
    expect_count(a, "0")
    wait_loaded(a)
    assert account.call("GET", "/analytics/refusals?dateRange=1d") == []  # never refused
    # a script without the work is refused; with it, it gets through (the server asks for it)
    c = Client(cv_server.base, timeout=15)
    try:
        vote = {"id": group, "voteTo": "post-pow", "value": 1, "key": account.public_key}
        answer = c.call("vote", {**vote, "userId": "script"})
        assert answer["error"]["code"] == "proof_of_work_required"
        solved = proof_of_work(c.call("challenge", {"key": account.public_key}))
        assert c.call("vote", {**vote, "userId": "script", "pow": solved})["ok"]
    finally:
        c.close()
    expect_count(a, "1")  # live
    refused = account.call("GET", "/analytics/refusals?dateRange=1d")
    assert [r["proofOfWork"] for r in refused] == [1]
    assert not new_page.errors, new_page.errors


# every Socket.IO event the page sends over its WebSocket, by name
EVENTS_SENT = """
window.cvSent = [];
const send = WebSocket.prototype.send;
WebSocket.prototype.send = function (data) {
  const m = /^42\\d*\\["([^"]+)"/.exec(String(data));
  if (m) window.cvSent.push(m[1]);
  return send.call(this, data);
};
"""


def sent(page: Any, event: str) -> int:
    return int(page.evaluate("(e) => window.cvSent.filter((n) => n === e).length", event))


def test_no_challenge_asked_without_proof_of_work_one_once_it_is_on(
    cv_server: Server, site: Site, account: Account, new_page: Any
) -> None:
    """Login says proof of work is off: the embed asks for no challenge. Turned on since,
    the vote refused with proof_of_work_required is solved and sent again (one challenge)."""
    group = account.group("single")
    url = site.page("nopow.html", embed_page(cv_server, tag(account, group, "post-free", "like")))
    a = new_page()
    a.add_init_script(EVENTS_SENT)
    a.goto(url)
    wait_loaded(a)
    like = widget(a).locator("button.like")
    like.click()
    expect_count(a, "1")
    wait_loaded(a)
    assert (sent(a, "login"), sent(a, "vote"), sent(a, "challenge")) == (1, 1, 0)
    account.call("PUT", "/settings/", {"powDifficulty": 8})
    like.click()  # refused, then solved and sent again with the same msgId
    expect_count(a, "0")
    wait_loaded(a)
    assert (sent(a, "vote"), sent(a, "challenge")) == (3, 1)
    assert like.get_attribute("aria-pressed") == "false"
    refused = account.call("GET", "/analytics/refusals?dateRange=1d")
    assert [r["proofOfWork"] for r in refused] == [1]
    assert not new_page.errors, new_page.errors


@pytest.mark.parametrize(
    "cv_server", [(1, {"CLICKVOTE_STORAGE_WAIT": "0.3"})], indirect=True, ids=["storage-wait"]
)
def test_a_vote_waits_out_a_locked_database(
    cv_server: Server, site: Site, account: Account, new_page: Any
) -> None:
    """Another process keeps the database locked for longer than the server waits: the vote
    meets `storage_unavailable`, the embed sends it again (same msgId) until it lands, without
    an error shown or the count taken back; it counts once."""
    from app.test_sqlite_busy import Holder

    group = account.group("single")
    url = site.page("locked.html", embed_page(cv_server, tag(account, group, "post-l", "like")))
    a = new_page()
    a.goto(url)
    wait_loaded(a)
    holder = Holder(str(cv_server.data_dir / "clickvote.db")).hold()
    try:
        widget(a).locator("button.like").click()
        a.wait_for_timeout(2_500)  # a few answers of storage_unavailable meanwhile
        assert widget(a).locator(".err").inner_text().strip() == ""
        assert count_text(a) == "1"  # still shown, not taken back
    finally:
        holder.release()
    expect_count(a, "1")
    a.wait_for_timeout(1_500)
    assert "database is locked" in cv_server.log.read_text()
    a.reload()
    wait_loaded(a)
    assert count_text(a) == "1"


@pytest.fixture
def pg_site(tmp_path: Path) -> Iterator[tuple[Server, PostgresServer]]:
    """A server on a PostgreSQL of its own, which the test stops and starts again."""
    pg = PostgresServer()
    try:
        pg.start()
        with running_server(tmp_path, 1, {"CLICKVOTE_DATABASE_URL": pg.create_database()}) as srv:
            yield srv, pg
    finally:
        pg.stop()


def test_logins_and_reads_wait_out_a_stopped_database(
    pg_site: tuple[Server, PostgresServer], site: Site, new_page: Any
) -> None:
    """PostgreSQL stopped: a new page's `login` and a new widget's `get-votes` meet
    `storage_unavailable`; the embed asks again after `retryAfter`, without an error shown,
    and both load once the database is back."""
    server, pg = pg_site
    account = register(server)
    group = account.group("single")
    a = new_page()
    a.goto(site.page("pg-a.html", embed_page(server, tag(account, group, "post-a", "like"))))
    wait_loaded(a)
    pg.halt()
    try:
        a.evaluate(  # a widget added to the page online: only its get-votes meets the outage
            "html => document.body.insertAdjacentHTML('beforeend', html)",
            tag(account, group, "post-b", "like", tid="cv2"),
        )
        a.wait_for_timeout(2_500)  # a few answers of storage_unavailable meanwhile
        # a page opened now, the environment no longer cached: its login meets the outage
        b = new_page()
        b.goto(site.page("pg-b.html", embed_page(server, tag(account, group, "post-b", "like"))))
        b.wait_for_timeout(2_500)
        for page, tid in ((a, "cv2"), (b, "cv")):
            assert widget(page, tid).locator(".err").inner_text().strip() == ""
            assert widget(page, tid).locator(".w").get_attribute("aria-busy") == "true"
    finally:
        pg.start()
    wait_loaded(a, "cv2")
    wait_loaded(b)
    widget(b).locator("button.like").click()
    expect_count(b, "1")
    expect_count(a, "1", "cv2")
    assert "storage_unavailable" not in str(new_page.errors)
    log = server.log.read_text()
    assert "login: " in log and "get-votes: " in log  # each met the outage
