"""CLI: migrate, createuser, export/import round trip, user errors (in-process, no subprocess)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import requests
from services import free_port, load_settings, start_uvicorn

from clickvote.app import create_app
from clickvote.cli import main
from clickvote.storage.sql import load_migrations

from .conftest import Client, Dashboard, Server, login


def test_export_import_round_trip(
    server: Server,
    dash: Dashboard,
    clients,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CLICKVOTE_BCRYPT_ROUNDS", "4")
    dash.group("stars", "range", start=1, end=5)
    keys = dash.keys()
    c: Client = clients()
    t = login(c, keys["publicKey"])
    assert c.call("vote", {"id": "stars", "voteTo": "a", "userId": "u", "value": 4, "token": t})[
        "ok"
    ]
    out = tmp_path / "export.json"
    assert main(["export", "--data-dir", str(server.data_dir), "-o", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["format"] == "clickvote-export"
    target = tmp_path / "target"
    assert main(["import", str(out), "--data-dir", str(target)]) == 0
    out2 = tmp_path / "export2.json"
    assert main(["export", "--data-dir", str(target), "-o", str(out2)]) == 0
    again = json.loads(out2.read_text())
    assert again["tables"] == data["tables"]  # nothing lost, secrets re-sealed
    # what holds secrets is its owner's only
    for path in (out, out2, target / "clickvote.db", target / "master.key"):
        assert path.stat().st_mode & 0o777 == 0o600, path
    # the master key moves too (tokens stay valid: test_tokens_survive_a_move)
    assert (target / "master.key").read_text() == (server.data_dir / "master.key").read_text()
    envs = again["tables"]["envs"]
    col = envs["columns"].index("secret_key")
    assert keys["secretKey"] in [row[col] for row in envs["rows"]]
    # importing twice is refused with a message, no traceback
    capsys.readouterr()
    assert main(["import", str(out), "--data-dir", str(target)]) == 2
    assert "not empty" in capsys.readouterr().err


def test_cli_user_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLICKVOTE_BCRYPT_ROUNDS", "4")
    d = str(tmp_path / "d")
    assert main(["migrate", "--data-dir", d]) == 0
    latest = max(v for v, _ in load_migrations())
    assert f"schema version {latest}" in capsys.readouterr().out
    assert (
        main(
            ["createuser", "--data-dir", d, "--email", "a@example.com", "--password", "password123"]
        )
        == 0
    )
    assert (
        main(
            ["createuser", "--data-dir", d, "--email", "a@example.com", "--password", "password123"]
        )
        == 2
    )
    assert main(["createuser", "--data-dir", d, "--email", "bad", "--password", "x"]) == 2
    (tmp_path / "junk.json").write_text("{not json")
    assert main(["import", str(tmp_path / "junk.json"), "--data-dir", d]) == 2
    assert main(["import", str(tmp_path / "missing.json"), "--data-dir", d]) == 2
    assert main(["migrate", "--database-url", "mysql://x"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("clickvote: error:") == 5


def test_import_refuses_a_tally_that_disagrees_with_its_votes(
    server: Server,
    dash: Dashboard,
    clients,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CLICKVOTE_BCRYPT_ROUNDS", "4")
    dash.group("likes")
    c: Client = clients()
    t = login(c, dash.keys()["publicKey"])
    msg = {"id": "likes", "voteTo": "a", "userId": "u", "value": 1, "token": t}
    assert c.call("vote", msg)["ok"]
    out = tmp_path / "export.json"
    assert main(["export", "--data-dir", str(server.data_dir), "-o", str(out)]) == 0
    data = json.loads(out.read_text())
    tallies = data["tables"]["tallies"]
    for row in tallies["rows"]:
        row[tallies["columns"].index("total")] += 1
    out.write_text(json.dumps(data))
    capsys.readouterr()
    assert main(["import", str(out), "--data-dir", str(tmp_path / "target")]) == 2
    printed = capsys.readouterr()
    assert "nothing imported" in printed.err and "but its votes make" in printed.err
    assert "Traceback" not in printed.err and "checked" not in printed.out


def test_import_reports_rows_it_cannot_move(
    server: Server,
    dash: Dashboard,
    clients,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    dash.group("likes")
    c: Client = clients()
    t = login(c, dash.keys()["publicKey"])
    assert c.call("vote", {"id": "likes", "voteTo": "a", "userId": "u", "value": 1, "token": t})[
        "ok"
    ]
    out = tmp_path / "export.json"
    assert main(["export", "--data-dir", str(server.data_dir), "-o", str(out)]) == 0
    data = json.loads(out.read_text())
    votes = data["tables"]["votes"]
    votes["rows"][0][votes["columns"].index("voter")] = "u\x00"  # stored by an older version
    out.write_text(json.dumps(data))
    capsys.readouterr()
    assert main(["import", str(out), "--data-dir", str(tmp_path / "target")]) == 2
    err = capsys.readouterr().err
    assert "nothing imported" in err and "votes (group_id=" in err, err
    assert "voter='u\\x00'): voter must not contain NUL characters" in err, err
    assert "Traceback" not in err


def test_tokens_survive_a_move(
    server: Server,
    dash: Dashboard,
    clients,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Voter tokens and login tokens the old installation issued work on the new one."""
    dash.group("likes")
    pk = dash.keys()["publicKey"]
    voter = requests.get(f"{server.url}/api/voter-token", params={"key": pk}, timeout=10).json()
    c: Client = clients()
    t = login(c, pk)
    vote = {"id": "likes", "voteTo": "a", "value": 1, "token": t, "voterToken": voter["token"]}
    assert c.call("vote", vote)["ok"]
    out = tmp_path / "export.json"
    assert main(["export", "--data-dir", str(server.data_dir), "-o", str(out)]) == 0
    target = tmp_path / "target"
    assert main(["import", str(out), "--data-dir", str(target)]) == 0
    port = free_port()
    srv, thread = start_uvicorn(create_app(load_settings(port, target)), port)
    moved = Client(f"http://127.0.0.1:{port}")
    try:
        ask = {"id": "likes", "voteTo": "a", "token": t, "voterToken": voter["token"]}
        state = moved.call("get-votes", ask)
        assert state["ok"] and state["voted"] and state["total"]["count"] == 1, state
        again = moved.call("vote", {**vote, "value": 0})  # the same voter: removes its vote
        assert again["ok"] and again["total"]["count"] == 0, again
    finally:
        moved.close()
        srv.should_exit = True
        thread.join(timeout=10)
    # an installation with a master key of its own imports, and says what that costs
    other = tmp_path / "other"
    capsys.readouterr()
    assert main(["migrate", "--data-dir", str(other)]) == 0
    assert main(["import", str(out), "--data-dir", str(other)]) == 0
    assert "not accepted here" in capsys.readouterr().err


def test_webhook_moves_with_its_secret(
    server: Server, dash: Dashboard, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An export carries each webhook with its secret in clear; an installation with another
    master key imports it sealed with its own, and signs with the same secret."""
    from receiver import Receiver

    secret = "whsec-moving-0123456789"
    receiver = Receiver().start()
    put = dash.put("/settings/webhook", {"url": receiver.url, "secret": secret})
    assert put.status_code == 200, put.text
    out = tmp_path / "export.json"
    assert main(["export", "--data-dir", str(server.data_dir), "-o", str(out)]) == 0
    hooks = json.loads(out.read_text())["tables"]["webhooks"]
    assert "secret_sealed" not in hooks["columns"]
    assert [receiver.url, secret] in [
        [row[hooks["columns"].index(c)] for c in ("url", "secret")] for row in hooks["rows"]
    ]
    other = tmp_path / "other"
    assert main(["migrate", "--data-dir", str(other)]) == 0  # a master key of its own
    assert main(["import", str(out), "--data-dir", str(other)]) == 0
    port = free_port()
    srv, thread = start_uvicorn(create_app(load_settings(port, other)), port)
    try:
        moved = requests.Session()
        login = moved.post(
            f"http://127.0.0.1:{port}/auth/login",
            json={"email": dash.email, "password": dash.password},
            timeout=10,
        )
        assert login.status_code == 200, login.text
        moved.headers["X-CSRF-Token"] = moved.cookies["csrftoken"]
        sent = moved.post(f"http://127.0.0.1:{port}/settings/webhook/test", timeout=10)
        assert sent.status_code == 200, sent.text
        deadline = time.monotonic() + 10
        while not receiver.received and time.monotonic() < deadline:
            time.sleep(0.02)
        assert [e["id"] for e in receiver.events(secret)] == [sent.json()["id"]]
    finally:
        srv.should_exit = True
        thread.join(timeout=10)
        receiver.stop()
