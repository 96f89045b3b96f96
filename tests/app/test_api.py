"""The JSON API: auth, CSRF, orgs/envs, settings, vote groups, analytics, public endpoints."""

from __future__ import annotations

import requests

from .conftest import TIMEOUT, Client, Dashboard, Server, login


def test_healthz_and_openapi(server: Server) -> None:
    r = requests.get(server.url + "/healthz", timeout=TIMEOUT)
    assert r.status_code == 200
    assert r.json()["status"] == "ok" and r.json()["version"]
    doc = requests.get(server.url + "/openapi.json", timeout=TIMEOUT).json()
    assert doc["openapi"].startswith("3.")
    for path in (
        "/auth/register",
        "/auth/login",
        "/users/self",
        "/votes/",
        "/votes/{group_id}",
        "/votes/{name}/analytics",
        "/votes/{name}/to",
        "/settings/",
        "/org/update",
    ):
        assert path in doc["paths"], path


def test_pages_and_embed_served(server: Server) -> None:
    for path in ("/", "/login", "/groups", "/groups/abc", "/settings", "/analytics"):
        r = requests.get(server.url + path, timeout=TIMEOUT)
        assert r.status_code == 200 and "text/html" in r.headers["content-type"], path
    r = requests.get(server.url + "/embed.js", timeout=TIMEOUT)
    assert r.status_code == 200 and "javascript" in r.headers["content-type"]


def test_register_login_logout(server: Server) -> None:
    d = Dashboard(server.url)
    me = d.get("/users/self").json()
    assert me["email"] == d.email
    assert [e["name"] for e in me["env"]] == ["dev", "production"]
    assert me["currentEnv"]["name"] == "dev" and me["currentEnv"]["public_key"].startswith("pb_")
    assert me["currentOrg"] == me["org"][0]
    # duplicate email: 409, with the real reason
    r = requests.post(
        server.url + "/auth/register",
        json={"email": d.email.upper(), "password": "whatever123"},
        timeout=TIMEOUT,
    )
    assert r.status_code == 409 and r.json()["statusCode"] == 409
    # wrong password: 401, unknown email: 401
    bad = requests.post(
        server.url + "/auth/login", json={"email": d.email, "password": "nope1234"}, timeout=TIMEOUT
    )
    assert bad.status_code == 401 and "message" in bad.json()
    assert (
        requests.post(
            server.url + "/auth/login",
            json={"email": "x" + d.email, "password": "nope1234"},
            timeout=TIMEOUT,
        ).status_code
        == 401
    )
    # logout needs CSRF, then the session is gone
    assert (
        d.http.post(
            server.url + "/auth/logout", headers={"X-CSRF-Token": "wrong"}, timeout=TIMEOUT
        ).status_code
        == 403
    )
    assert d.post("/auth/logout").status_code == 200
    assert d.get("/users/self").status_code == 401
    # log in again
    s = requests.Session()
    r = s.post(
        server.url + "/auth/login", json={"email": d.email, "password": d.password}, timeout=TIMEOUT
    )
    assert r.status_code == 200 and "auth" in s.cookies and "csrftoken" in s.cookies
    assert s.get(server.url + "/users/self", timeout=TIMEOUT).json()["email"] == d.email


def test_register_validation_names_field(server: Server) -> None:
    cases = [
        ({"email": "not-an-email", "password": "password123"}, "email"),
        ({"email": "ok@example.com", "password": "short"}, "password"),
        ({"password": "password123"}, "email"),
        ({"email": "ok2@example.com"}, "password"),
    ]
    for body, field in cases:
        r = requests.post(server.url + "/auth/register", json=body, timeout=TIMEOUT)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["field"] == field and field in r.json()["message"]
    r = requests.post(
        server.url + "/auth/register",
        data="{nope",
        timeout=TIMEOUT,
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 422


def test_csrf_required_for_cookie_writes(dash: Dashboard) -> None:
    headers = {"X-CSRF-Token": ""}
    r = dash.http.post(
        dash.url + "/votes/",
        json={"name": "abc", "type": "single"},
        headers=headers,
        timeout=TIMEOUT,
    )
    assert r.status_code == 403 and "CSRF" in r.json()["message"]
    assert dash.post("/votes/", {"name": "abc", "type": "single"}).status_code == 200


def test_unauthenticated_is_401(server: Server) -> None:
    for path in ("/users/self", "/votes/", "/settings/"):
        r = requests.get(server.url + path, timeout=TIMEOUT)
        assert r.status_code == 401 and r.json()["statusCode"] == 401


def test_org_and_env_switching(dash: Dashboard) -> None:
    assert dash.put("/org/update", {"name": "Acme"}).json()["name"] == "Acme"
    assert dash.put("/org/update", {"name": ""}).status_code == 422
    new = dash.post("/org/create", {"name": "Second"}).json()
    me = dash.get("/users/self").json()
    assert me["currentOrg"]["id"] == new["id"] and len(me["org"]) == 2
    prod = next(e for e in me["env"] if e["name"] == "production")
    assert dash.post("/env/switch", {"id": prod["id"]}).status_code == 200
    assert dash.get("/users/self").json()["currentEnv"]["id"] == prod["id"]
    assert dash.post("/env/switch", {"id": "nope"}).status_code == 404
    first = me["org"][0]
    assert dash.post("/org/switch", {"id": first["id"]}).status_code == 200
    assert dash.get("/users/self").json()["currentOrg"]["name"] == "Acme"
    other = Dashboard(dash.url)
    other_org = other.get("/users/self").json()["currentOrg"]["id"]
    assert dash.post("/org/switch", {"id": other_org}).status_code == 404


def test_settings_keys_and_rotation(dash: Dashboard) -> None:
    k = dash.keys()
    assert k["publicKey"].startswith("pb_") and len(k["publicKey"]) == 35
    assert k["secretKey"].startswith("sk_") and len(k["secretKey"]) == 35
    assert k["publicKey"][3:] != k["secretKey"][3:]
    rotated = dash.post("/settings/rotate").json()
    assert rotated["publicKey"] != k["publicKey"] and rotated["secretKey"] != k["secretKey"]
    assert dash.keys() == rotated


def test_groups_crud_pagination_and_validation(dash: Dashboard) -> None:
    for i in range(23):
        dash.group(f"group-{i:02d}")
    page1 = dash.get("/votes/?page=1&limit=10").json()
    assert page1["total"] == 23 and page1["pages"] == 3 and len(page1["items"]) == 10
    page3 = dash.get("/votes/?page=3&limit=10").json()
    assert len(page3["items"]) == 3
    names = {
        g["name"] for p in (1, 2, 3) for g in dash.get(f"/votes/?page={p}&limit=10").json()["items"]
    }
    assert len(names) == 23
    assert dash.get("/votes/?limit=1000").status_code == 422
    assert dash.get("/votes/?page=0").json()["field"] == "page"

    for body, field in [
        ({"name": "x", "type": "single"}, "name"),
        ({"name": "okay", "type": "star"}, "type"),
        ({"name": "okay", "type": "range", "end": 5}, "start"),
        ({"name": "okay", "type": "range", "start": 5, "end": 5}, "start"),
        ({"name": "okay", "type": "range", "start": 1}, "end"),
        ({"name": "okay", "type": "range", "start": "a", "end": 5}, "start"),
        ({"type": "single"}, "name"),
    ]:
        r = dash.post("/votes/", body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["field"] == field, (body, r.json())

    stars = dash.group("stars", "range", start=1, end=5)
    assert dash.post("/votes/", {"name": "stars", "type": "single"}).status_code == 409
    got = dash.get(f"/votes/{stars['id']}").json()
    assert (got["name"], got["type"], got["start"], got["end"]) == ("stars", "range", 1, 5)
    upd = dash.put(f"/votes/{stars['id']}", {"name": "stars-2", "end": 10}).json()
    assert (upd["name"], upd["end"]) == ("stars-2", 10)
    assert dash.put(f"/votes/{stars['id']}", {"name": "group-00"}).status_code == 409
    # soft delete: gone from reads, the name can be reused
    assert dash.delete(f"/votes/{stars['id']}").status_code == 200
    assert dash.get(f"/votes/{stars['id']}").status_code == 404
    assert dash.delete(f"/votes/{stars['id']}").status_code == 404
    assert dash.get("/votes/?limit=100").json()["total"] == 23
    assert dash.group("stars-2", "range", start=1, end=3)["id"] != stars["id"]


def test_group_shape_locked_after_votes_and_analytics(dash: Dashboard, clients) -> None:
    g = dash.group("likes")
    pk = dash.keys()["publicKey"]
    c: Client = clients()
    token = login(c, pk)
    for uid, to in (("u1", "post-1"), ("u2", "post-1"), ("u1", "post-2")):
        assert c.call(
            "vote", {"id": "likes", "voteTo": to, "userId": uid, "value": 1, "token": token}
        )["ok"]
    assert dash.put(f"/votes/{g['id']}", {"type": "range", "start": 1, "end": 5}).status_code == 409
    assert dash.put(f"/votes/{g['id']}", {"name": "likes-renamed"}).status_code == 200
    series = dash.get("/votes/likes-renamed/analytics?dateRange=1d").json()
    assert sum(p["count"] for p in series) == 3 and series[0]["_id"].endswith(":00:00Z")
    one = dash.get("/votes/likes-renamed/analytics?dateRange=7d&voteTo=post-2").json()
    assert sum(p["count"] for p in one) == 1
    assert dash.get("/votes/likes-renamed/analytics?dateRange=2w").status_code == 422
    assert dash.get("/votes/likes-renamed/to").json() == ["post-1", "post-2"]
    stats = dash.get("/votes/likes-renamed/stats").json()
    assert stats["clicks"] == 3 and stats["score"] == 3
    assert {i["voteTo"]: i["count"] for i in stats["top"]} == {"post-1": 2, "post-2": 1}
    listed = dash.get("/votes/").json()["items"][0]
    assert listed["clicks"] == 3 and listed["score"] == 3
    # `items` is the number of items on every endpoint that gives it
    one_group = dash.get(f"/votes/{g['id']}").json()
    assert stats["items"] == listed["items"] == one_group["items"] == 2
    assert sum(p["count"] for p in dash.get("/analytics/data?dateRange=30d").json()) == 3
    assert dash.get("/votes/missing/to").status_code == 404


def test_public_read_and_voter_token(dash: Dashboard, server: Server) -> None:
    dash.group("pub")
    pk = dash.keys()["publicKey"]
    r = requests.get(
        server.url + "/api/votes",
        params={"key": pk, "id": "pub", "voteTo": "a"},
        headers={"Origin": "https://blog.example"},
        timeout=TIMEOUT,
    )
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "*"
    assert r.json()["total"]["count"] == 0 and r.json()["voted"] is False
    assert (
        requests.get(
            server.url + "/api/votes",
            params={"key": "pb_nope", "id": "pub", "voteTo": "a"},
            timeout=TIMEOUT,
        ).status_code
        == 404
    )
    assert (
        requests.get(
            server.url + "/api/votes",
            params={"key": pk, "id": "nope", "voteTo": "a"},
            timeout=TIMEOUT,
        ).status_code
        == 404
    )
    t = requests.get(server.url + "/api/voter-token", params={"key": pk}, timeout=TIMEOUT).json()
    assert t["voterId"].startswith("anon_") and t["token"].startswith(t["voterId"] + ".")
