"""Service tokens through real processes: `coflux tokens create|list|revoke`, hashes only in the
database, workspace scope (HTTP and WebSocket: submit, worker registration, reads of a run),
revocation (the next request and connected workers), `coflux server --super-token-hash`, and
who did what (submit, re-run, cancel) as `coflux runs inspect` shows it."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import TOKEN, Server, Worker, run_cli, wait_until


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("tokens")
    srv = Server(base / "data").start()
    worker = Worker(srv, ["myapp.workflows", "opsapp"], concurrency=2, log=base / "worker.log").start()
    try:
        worker.wait_registered()
        yield srv
    finally:
        worker.stop()
        srv.stop()


def cli(server: Server, *args: str, token: str | None = None) -> subprocess.CompletedProcess:
    env = server.env()
    if token is not None:
        env["COFLUX_TOKEN"] = token
    return run_cli(*args, env=env, timeout=60)


def http(server: Server, method: str, path: str, token: str, body: dict | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(server.url + path, method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"token {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def create_token(server: Server, *flags: str) -> tuple[str, str]:
    """(token id, token) of a new token made with `coflux tokens create FLAGS`."""
    done = cli(server, "tokens", "create", *flags)
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    assert token.startswith("cft_") and "\n" not in token
    token_id = done.stderr.split()[1]
    return token_id, token


def test_token_is_shown_once_and_stored_only_as_its_hash(server: Server) -> None:
    token_id, token = create_token(server, "--name", "ci pipeline", "--workspaces", "prod/*,staging",
                                   "--tag", "team:ml", "--allow-code")
    listed = cli(server, "tokens", "list")
    assert listed.returncode == 0, listed.stderr
    line = next(line for line in listed.stdout.splitlines() if line.startswith(token_id))
    assert "ci pipeline" in line and "prod/*, staging" in line and "active" in line
    assert "team:ml" in line and "may ship code" in line and "created by super token" in line
    assert token not in listed.stdout
    as_json = json.loads(cli(server, "tokens", "list", "-o", "json").stdout)
    assert all("token_hash" not in t and "token" not in t for t in as_json)
    # The database holds the hash, never the token (nor any part of its secret).
    database = server.data_dir / "coflux.db"  # type: ignore[operator]
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT id, token_hash FROM tokens").fetchall()
    assert (token_id, hashlib.sha256(token.encode()).hexdigest()) in rows
    secret = token.removeprefix("cft_")
    for path in Path(database).parent.glob("coflux.db*"):  # the WAL too
        assert secret.encode() not in path.read_bytes()
    # who the token is to the server
    status, me = http(server, "GET", "api/whoami", token)
    assert status == 200 and me == {"name": "ci pipeline", "kind": "service", "workspaces": ["prod/*", "staging"],
                                    "tags": {"team": ["ml"]}, "may_ship_code": True, "pool": None}


def test_token_defaults_and_bad_input(server: Server) -> None:
    _, token = create_token(server, "--name", "plain")
    status, me = http(server, "GET", "api/whoami", token)
    assert me["workspaces"] is None and me["may_ship_code"] is False and me["tags"] == {}
    for flags, words in [(["--name", " "], "a token name must be 1 to 200 characters"),
                         (["--name", "x", "--tag", "no spaces"], "--tag 'no spaces': expected KEY:VALUE"),
                         (["--name", "x", "--workspaces", ","], "--workspaces ',': expected workspace names")]:
        before = cli(server, "tokens", "list").stdout
        done = cli(server, "tokens", "create", *flags)
        assert done.returncode == 2 and done.stderr.startswith(f"coflux: {words}"), done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
        assert cli(server, "tokens", "list").stdout == before  # nothing recorded
    missing = cli(server, "tokens", "revoke", "Tnosuchtoken")
    assert missing.returncode == 2 and missing.stderr.strip() == "coflux: no token 'Tnosuchtoken'"
    # a service token does not manage tokens
    status, body = http(server, "POST", "api/tokens", token, {"name": "mine"})
    assert status == 403 and "only the super token" in body["error"]["message"]


def test_a_scoped_token_is_refused_outside_its_workspaces(server: Server, tmp_path: Path) -> None:
    assert cli(server, "workspaces", "create", "prod/eu", "--base", "default").returncode == 0
    _, token = create_token(server, "--name", "prod deployer", "--workspaces", "prod/*")
    # submit (HTTP): refused in another workspace, nothing recorded; accepted in its own
    runs_before = len(http(server, "GET", "api/runs", TOKEN)[1]["runs"])
    status, body = http(server, "POST", "api/runs", token,
                        {"module": "myapp.workflows", "target": "child", "args": [1]})
    assert status == 403 and body["error"]["message"] == (
        "'prod deployer' may not use workspace 'default' (it is limited to prod/*)")
    assert len(http(server, "GET", "api/runs", TOKEN)[1]["runs"]) == runs_before
    # submit (CLI, over the WebSocket): one line, exit 2
    done = cli(server, "submit", "--no-wait", "myapp.workflows/child", "2", token=token)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == ("coflux: 'prod deployer' may not use workspace 'default' "
                                   "(it is limited to prod/*)")
    assert len(http(server, "GET", "api/runs", TOKEN)[1]["runs"]) == runs_before
    # a run in the default workspace is not the token's to read, wait on, re-run or cancel
    status, made = http(server, "POST", "api/runs", TOKEN, {"module": "myapp.workflows", "target": "child", "args": [3]})
    run_id = made["run"] if "run" in made else made["id"]
    for method, path in [("GET", f"api/runs/{run_id}"), ("GET", f"api/runs/{run_id}/result"),
                         ("POST", f"api/steps/{run_id}:1/rerun"), ("POST", f"api/executions/{run_id}:1:1/cancel")]:
        status, body = http(server, method, path, token, {} if method == "POST" else None)
        assert status == 403 and "may not use workspace 'default'" in body["error"]["message"], (path, body)
    for path in (f"api/runs/{run_id}/logs", f"api/runs/{run_id}/metrics", f"api/runs/{run_id}/assets",
                 f"api/steps/{run_id}:1/code"):
        status, body = http(server, "GET", path, token)
        assert status == 403 and "may not use workspace 'default'" in body["error"]["message"], (path, body)
    listed = cli(server, "runs", "list", "-o", "json", token=token)  # other workspaces' runs are not listed
    assert listed.returncode == 0 and run_id not in listed.stdout, listed.stderr
    assert run_id in cli(server, "runs", "list", "-o", "json").stdout
    inspect = cli(server, "runs", "inspect", "--no-wait", run_id, token=token)
    assert inspect.returncode == 2 and "may not use workspace 'default'" in inspect.stderr
    result = cli(server, "runs", "result", run_id, token=token)
    assert result.returncode == 2 and "may not use workspace 'default'" in result.stderr
    # a worker with the token may not register in another workspace
    worker = subprocess.run(
        [*_worker_args(server, token), "--workspace", "staging", "myapp.workflows"],
        env=server.env(), cwd=str(Path(__file__).parent / "apps"), capture_output=True, text=True, timeout=60)
    assert worker.returncode != 0 and "may not use workspace 'staging'" in worker.stderr
    # ... and works in its own
    status, made = http(server, "POST", "api/runs", token, {"module": "myapp.workflows", "target": "child",
                                                            "args": [4], "workspace": "prod/eu"})
    assert status == 201, made


def _worker_args(server: Server, token: str) -> list[str]:
    import sys

    return [sys.executable, "-m", "coflux", "worker", "--server", server.url, "--token", token,
            "--concurrency", "1"]


def test_revoking_refuses_the_next_request_and_disconnects_workers(server: Server, tmp_path: Path) -> None:
    token_id, token = create_token(server, "--name", "box 7")
    assert http(server, "GET", "api/whoami", token)[0] == 200
    log = tmp_path / "worker.log"
    worker = subprocess.Popen([*_worker_args(server, token), "myapp.workflows"], env=server.env(),
                              cwd=str(Path(__file__).parent / "apps"), stdout=log.open("w"),
                              stderr=subprocess.STDOUT)
    try:
        def session() -> dict | None:
            return next((w for w in server.workers() if w["connected"] and w["name"].endswith(f":{worker.pid}")),
                        None)

        wait_until(session, 60, message="the worker to register")
        done = cli(server, "tokens", "revoke", token_id)
        assert done.returncode == 0 and done.stdout.strip() == f"revoked {token_id} (box 7)"
        status, body = http(server, "GET", "api/whoami", token)
        assert status == 403 and body["error"]["message"] == "this token was revoked"
        wait_until(lambda: session() is None, 10, message="the worker to be disconnected")
        worker.wait(30)  # it cannot come back: refused
        assert "refused the token (HTTP 403)" in log.read_text()
        listed = cli(server, "tokens", "list").stdout
        assert any(line.startswith(token_id) and "revoked" in line for line in listed.splitlines())
        again = cli(server, "tokens", "revoke", token_id)
        assert again.returncode == 2 and "already revoked" in again.stderr
        refused = cli(server, "runs", "list", token=token)
        assert refused.returncode == 2 and "refused the token (HTTP 403: this token was revoked)" in refused.stderr
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)


def test_tokens_survive_a_restart(tmp_path: Path) -> None:
    srv = Server(tmp_path / "data").start()
    try:
        token_id, token = create_token(srv, "--name", "kept")
        revoked_id, revoked = create_token(srv, "--name", "gone")
        assert cli(srv, "tokens", "revoke", revoked_id).returncode == 0
        srv.stop()
        srv.start()
        assert http(srv, "GET", "api/whoami", token)[1]["name"] == "kept"
        assert http(srv, "GET", "api/whoami", revoked)[0] == 403
    finally:
        srv.stop()


def test_super_token_hash(tmp_path: Path) -> None:
    digest = hashlib.sha256(b"only-the-hash-is-configured").hexdigest()
    srv = Server(tmp_path / "data", token=None, extra=["--super-token-hash", digest.upper()]).start()
    try:
        assert "only-the-hash" not in srv.output() and "token:" not in srv.output()
        status, me = http(srv, "GET", "api/whoami", "only-the-hash-is-configured")
        assert status == 200 and me["kind"] == "super"
        assert http(srv, "GET", "api/whoami", digest)[0] == 403  # the hash is not the token
    finally:
        srv.stop()
    bad = run_cli("server", "--port", "0", "--data-dir", str(tmp_path / "bad"), "--super-token-hash", "abc",
                  env=srv.env(), timeout=30)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert "--super-token-hash must be a SHA-256 in hex" in bad.stderr
    origin = run_cli("server", "--port", "0", "--data-dir", str(tmp_path / "bad"), "--allow-origin", "notebooks",
                     env=srv.env(), timeout=30)
    assert origin.returncode == 2 and origin.stderr == (
        "coflux server: --allow-origin 'notebooks': expected an origin such as https://notebooks.example\n")


def test_runs_record_who_submitted_reran_and_cancelled(server: Server) -> None:
    _, alice = create_token(server, "--name", "alice-ci")
    _, bob = create_token(server, "--name", "bob")
    submitted = cli(server, "submit", "--no-wait", "myapp.workflows/child", "5", token=alice)
    assert submitted.returncode == 0, submitted.stderr
    run_id = submitted.stdout.strip()
    assert cli(server, "runs", "result", run_id, token=alice).stdout.strip() == "50"
    rerun = cli(server, "runs", "rerun", f"{run_id}:1", token=bob)
    assert rerun.returncode == 0 and rerun.stdout.strip() == "50", rerun.stderr
    text = cli(server, "runs", "inspect", run_id).stdout
    assert " by alice-ci  succeeded in " in text.splitlines()[0]
    assert f"{run_id}:1:2  attempt 2  (re-run by bob)  value 50" in text
    snapshot = json.loads(cli(server, "runs", "inspect", run_id, "-o", "json").stdout)
    assert snapshot["by"] == "alice-ci"
    assert [e["by"] for e in snapshot["steps"][0]["executions"]] == [None, "bob"]
    # cancelled by, and submitted over HTTP with the super token
    status, made = http(server, "POST", "api/runs", TOKEN, {"module": "opsapp", "target": "unplaceable"})
    assert status == 201
    cancelled = cli(server, "runs", "cancel", made["run"], token=bob)
    assert cancelled.returncode == 0, cancelled.stderr
    text = cli(server, "runs", "inspect", made["run"]).stdout
    assert " by super token  cancelled" in text.splitlines()[0]
    assert f"{made['run']}:1:1  attempt 1  cancelled by bob" in text
    # a service token cannot claim to be someone else (only the super token's connections may)
    from coflux.client import Client

    with Client(server.url, bob) as client:
        client.acting_for = "mallory"
        run = client.submit_json("myapp.workflows", "child", [1])
    assert json.loads(cli(server, "runs", "inspect", run.id, "-o", "json").stdout)["by"] == "bob"
    with Client(server.url, TOKEN) as client:
        client.acting_for = "ann (jupyter)"
        run = client.submit_json("myapp.workflows", "child", [1])
    assert json.loads(cli(server, "runs", "inspect", run.id, "-o", "json").stdout)["by"] == "ann (jupyter)"


def test_a_scoped_token_follows_single_runs_but_not_every_workspaces_feed(server: Server) -> None:
    """The `runs` and `workers` topics carry every workspace's runs, prompts and workers: a token
    limited to some workspaces is refused them over the real WebSocket, and may still follow a
    run of its own workspace (checked against its scope like any run read)."""
    import asyncio

    from test_accept_code import _ws_op

    assert cli(server, "workspaces", "create", "team/a", "--base", "default").returncode in (0, 2)
    _, token = create_token(server, "--name", "team feed", "--workspaces", "team/*")
    for topic in ("runs", "workers"):
        reply = asyncio.run(_ws_op(server, token, "subscribe", {"topic": topic}))
        assert reply["err"]["code"] == "forbidden", reply
        assert f"it may follow single runs ('run:<id>'), not the '{topic}' topic" in reply["err"]["message"]
        assert "ok" in asyncio.run(_ws_op(server, TOKEN, "subscribe", {"topic": topic}))  # the super token may
    status, made = http(server, "POST", "api/runs", token, {"module": "myapp.workflows", "target": "child",
                                                            "args": [5], "workspace": "team/a"})
    assert status == 201, made
    own = asyncio.run(_ws_op(server, token, "subscribe", {"topic": f"run:{made['run']}"}))
    assert "ok" in own and made["run"] in json.dumps(own["ok"]), own
    status, other = http(server, "POST", "api/runs", TOKEN, {"module": "myapp.workflows", "target": "child",
                                                             "args": [6]})
    refused = asyncio.run(_ws_op(server, token, "subscribe", {"topic": f"run:{other['run']}"}))
    assert refused["err"]["code"] == "forbidden", refused
