"""Studio served by a real `coflux server`: the login (token URL, form, HttpOnly cookie), the cookie
on every route with its CSRF rule, static files, cross-origin use with a token, the queue route,
the workflow signature Studio's run dialog reads, and the live graph events (dependency, child run,
group)."""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tornado.httpclient
import tornado.websocket
from harness import TOKEN, Server, Worker, wait_until

from coflux_server.studio_handlers import STATIC_DIR

FOREIGN = "http://notebook.example:8888"


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Worker]]:
    base = tmp_path_factory.mktemp("studio")
    server = Server(base / "data", extra=["--allow-origin", FOREIGN]).start()
    worker = Worker(server, ["studioapp"], concurrency=4, log=base / "worker.log").start()
    try:
        worker.wait_registered()
        yield server, worker
    finally:
        worker.stop()
        server.stop()


@pytest.fixture(scope="module")
def server(studio: tuple[Server, Worker]) -> Server:
    return studio[0]


class Reply:
    def __init__(self, response: http.client.HTTPResponse) -> None:
        self.status = response.status
        self.headers = response.headers
        self.body = response.read()

    @property
    def text(self) -> str:
        return self.body.decode()

    def json(self) -> Any:
        return json.loads(self.body)


def request(server: Server, method: str, path: str, *, headers: dict[str, str] | None = None,
            body: bytes | str | None = None) -> Reply:
    """One HTTP request with the path sent exactly as given (no normalisation, no redirects)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        return Reply(connection.getresponse())
    finally:
        connection.close()


def log_in(server: Server) -> str:
    """The `Cookie` header value the login URL sets."""
    reply = request(server, "GET", f"/?token={TOKEN}")
    assert reply.status == 302
    return reply.headers["Set-Cookie"].split(";", 1)[0]


def config_of(page: str) -> dict:
    match = re.search(r'<script id="coflux-config" type="application/json">(.*?)</script>', page)
    assert match, page[:500]
    return json.loads(match[1])


async def _socket(server: Server, *, query: str = "", headers: dict[str, str] | None = None
                  ) -> tornado.websocket.WebSocketClientConnection:
    url = server.url.replace("http://", "ws://") + "api/ws" + query
    return await tornado.websocket.websocket_connect(tornado.httpclient.HTTPRequest(url, headers=headers or {}))


async def _call(ws: tornado.websocket.WebSocketClientConnection, request_id: int, op: str, params: dict,
                pushes: list[dict] | None = None) -> dict:
    await ws.write_message(json.dumps({"id": request_id, "op": op, "params": params}))
    while True:
        message = await asyncio.wait_for(ws.read_message(), 20)
        assert message is not None, "the socket closed"
        for item in (frame if isinstance(frame := json.loads(message), list) else [frame]):
            if item.get("re") == request_id:
                return item
            if pushes is not None:
                pushes.append(item)


def test_server_prints_the_studio_login_url(server: Server) -> None:
    lines = server.output().splitlines()
    ready = next(i for i, line in enumerate(lines) if line.startswith("coflux server ready at "))
    assert lines[ready] == f"coflux server ready at {server.url}"  # unchanged: tools parse it
    assert lines[ready + 1] == f"Studio: {server.url}?token={TOKEN}"


def test_visitor_without_token_gets_a_login_form_and_no_data(server: Server) -> None:
    submitted = request(server, "POST", "/api/runs", headers={"Authorization": f"token {TOKEN}"},
                        body=json.dumps({"module": "studioapp", "target": "child", "args": [2]}))
    run_id = submitted.json()["run"]
    page = request(server, "GET", "/")
    assert page.status == 401
    assert page.headers["Content-Type"].startswith("text/html")
    assert re.search(r'<form method="post"[^>]*>.*name="token"', page.text, re.S)
    assert "coflux-config" not in page.text and run_id not in page.text and "studioapp" not in page.text
    assert "Set-Cookie" not in page.headers
    wrong = request(server, "GET", "/?token=not-the-token")
    assert wrong.status == 403 and "not right" in wrong.text and "Set-Cookie" not in wrong.headers
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    empty = request(server, "POST", "/", headers=form, body="token=")
    assert empty.status == 401 and "Enter the server" in empty.text  # no token typed: not a wrong one
    # Already authenticated (a header token) and no token typed: on to the Studio.
    assert request(server, "POST", "/", headers={**form, "Authorization": f"token {TOKEN}"},
                   body="token=").status == 302
    for path in ("/api/runs", "/static/studio.js", f"/api/runs/{run_id}"):
        assert request(server, "GET", path).status == 401, path
    bad_cookie = {"Cookie": f"coflux-auth-{server.port}=" + "0" * 64}
    assert request(server, "GET", "/api/runs", headers=bad_cookie).status == 401


def test_login_url_sets_an_httponly_cookie_that_authenticates_every_route(server: Server) -> None:
    reply = request(server, "GET", f"/?token={TOKEN}")
    assert reply.status == 302 and reply.headers["Location"] == "/"
    cookie = reply.headers["Set-Cookie"]
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "path"} <= attributes and "samesite=strict" in cookie.lower()
    assert TOKEN not in cookie  # the cookie holds a digest, not the token
    headers = {"Cookie": cookie.split(";", 1)[0]}

    page = request(server, "GET", "/", headers=headers)
    assert page.status == 200
    assert config_of(page.text) == {"base": "/", "mode": "headless"}
    assert '<div id="coflux-studio">' in page.text
    if (STATIC_DIR / "studio.js").exists():
        assert '<script type="module" src="static/studio.js"></script>' in page.text
    else:
        assert "npm --prefix jupyter_ext/frontend ci && npm --prefix jupyter_ext/frontend run build" \
            in page.text.replace("&amp;", "&")
    assert request(server, "GET", "/api/runs", headers=headers).json()["runs"] is not None
    assert "queue" in request(server, "GET", "/api/queue", headers=headers).json()
    blob = "/api/blobs/" + "ab" * 32
    assert request(server, "GET", blob, headers=headers).status == 404  # authenticated: just not there
    assert request(server, "GET", blob).status == 401
    probe = STATIC_DIR / "test-probe-studio-server.txt"
    probe.write_text("probe")
    try:
        static = request(server, "GET", "/static/" + probe.name, headers=headers)
        assert static.status == 200 and static.body == b"probe"
        assert static.headers["Cache-Control"] == "no-cache"
        assert request(server, "GET", "/static/" + probe.name).status == 401
    finally:
        probe.unlink()

    async def socket() -> None:
        ws = await _socket(server, headers={**headers, "Origin": server.url.rstrip("/")})
        reply = await _call(ws, 1, "subscribe", {"topic": "runs"})
        assert "seq" in reply["ok"]
        ws.close()
        with pytest.raises(tornado.httpclient.HTTPClientError) as refused:  # a cross-site page: no
            await _socket(server, headers={**headers, "Origin": FOREIGN})
        assert refused.value.code == 403
        with pytest.raises(tornado.httpclient.HTTPClientError) as anonymous:
            await _socket(server)
        assert anonymous.value.code == 401

    asyncio.run(socket())


def test_login_form_keeps_the_deep_link(server: Server) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    reply = request(server, "POST", "/", headers=form,
                    body=urllib.parse.urlencode({"token": TOKEN, "hash": "#/runs/Rabc/steps/Rabc:2"}))
    assert reply.status == 302 and reply.headers["Location"] == "/#/runs/Rabc/steps/Rabc:2"
    assert "HttpOnly" in reply.headers["Set-Cookie"]
    odd = request(server, "POST", "/", headers=form,
                  body=urllib.parse.urlencode({"token": TOKEN, "hash": "#/x\"><script>"}))
    assert odd.headers["Location"] == "/"
    wrong = request(server, "POST", "/", headers=form, body="token=nope")
    assert wrong.status == 403 and "Set-Cookie" not in wrong.headers


def test_cookie_changes_need_the_csrf_header(server: Server) -> None:
    cookie = {"Cookie": log_in(server), "Content-Type": "application/json"}
    body = json.dumps({"module": "studioapp", "target": "child", "args": [3]})
    refused = request(server, "POST", "/api/runs", headers=cookie, body=body)
    assert refused.status == 403
    assert "X-Requested-With" in refused.json()["error"]["message"]
    accepted = request(server, "POST", "/api/runs", headers={**cookie, "X-Requested-With": "coflux"}, body=body)
    assert accepted.status == 201, accepted.text
    # a token needs no such header (not a browser's ambient credential)
    token = {"Authorization": f"token {TOKEN}", "Content-Type": "application/json"}
    assert request(server, "POST", "/api/runs", headers=token, body=body).status == 201


@pytest.mark.parametrize("path", ["/static/../app.py", "/static/%2e%2e/app.py", "/static/..%2fapp.py",
                                  "/static/%2e%2e%2fstudio_handlers.py", "/static//etc/passwd",
                                  "/static/.gitignore", "/static/", "/static/no-such-file.js"])
def test_static_path_tricks_are_refused(server: Server, path: str) -> None:
    reply = request(server, "GET", path, headers={"Cookie": log_in(server)})
    assert reply.status in (403, 404), (path, reply.status)
    assert b"import" not in reply.body and b"root:" not in reply.body


OTHER_ORIGIN = "http://elsewhere.example:8888"  # not one of --allow-origin


def test_cross_origin_use_with_a_token(server: Server) -> None:
    """A page of an `--allow-origin` origin may call the server with a token (CORS, and a
    WebSocket with `?token=`); a page of any other origin may not, token or not."""
    preflight = request(server, "OPTIONS", "/api/runs", headers={
        "Origin": FOREIGN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, x-requested-with"})
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == FOREIGN
    allowed = preflight.headers["Access-Control-Allow-Headers"].lower()
    assert {"authorization", "content-type", "x-requested-with"} <= {h.strip() for h in allowed.split(",")}
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert "Access-Control-Allow-Credentials" not in preflight.headers  # the cookie never goes cross-origin

    with_token = request(server, "GET", "/api/workflows", headers={
        "Origin": FOREIGN, "Authorization": f"token {TOKEN}"})
    assert with_token.status == 200 and with_token.headers["Access-Control-Allow-Origin"] == FOREIGN
    with_cookie = request(server, "GET", "/api/workflows", headers={"Origin": FOREIGN, "Cookie": log_in(server)})
    assert "Access-Control-Allow-Origin" not in with_cookie.headers
    # Another origin: no preflight answer, no CORS headers (the browser keeps the reply from the page).
    other = request(server, "OPTIONS", "/api/runs", headers={
        "Origin": OTHER_ORIGIN, "Access-Control-Request-Method": "POST"})
    assert other.status == 401 and "Access-Control-Allow-Origin" not in other.headers
    other_get = request(server, "GET", "/api/workflows", headers={"Origin": OTHER_ORIGIN,
                                                                  "Authorization": f"token {TOKEN}"})
    assert "Access-Control-Allow-Origin" not in other_get.headers

    async def socket() -> None:  # a browser cannot send headers on a WebSocket: `?token=`
        ws = await _socket(server, query=f"?token={TOKEN}", headers={"Origin": FOREIGN})
        assert (await _call(ws, 1, "ping", {}))["ok"] == {"pong": True}
        ws.close()
        with pytest.raises(tornado.httpclient.HTTPClientError) as refused:
            await _socket(server, query=f"?token={TOKEN}", headers={"Origin": OTHER_ORIGIN})
        assert refused.value.code == 403

    asyncio.run(socket())


def test_workflow_signature_for_the_run_dialog(server: Server) -> None:
    workflows = server.get("api/workflows")["workflows"]
    shapes = next(w for w in workflows if w["module"] == "studioapp" and w["name"] == "shapes")
    assert shapes["instruction"].startswith("Squares in a group, then a child run.")
    params = {p["name"]: p for p in shapes["parameters"]}
    assert list(params) == ["n", "scale", "label", "gate"]
    assert params["n"] == {"name": "n", "kind": "positional_or_keyword", "annotation": "int",
                           "schema": {"type": "integer"}}  # (the JSON Schema submits are checked against)
    assert params["scale"]["default"] == {"v": 1.5} and params["scale"]["kind"] == "positional_or_keyword"
    assert params["label"]["kind"] == "keyword_only" and params["label"]["default"] == {"v": "run"}


def test_queue_lists_pending_executions_and_why_they_wait(server: Server) -> None:
    token = {"Authorization": f"token {TOKEN}", "Content-Type": "application/json"}
    run = request(server, "POST", "/api/runs", headers=token,
                  body=json.dumps({"module": "studioapp", "target": "wants_gpu"})).json()["run"]

    def queued() -> dict | None:
        for entry in request(server, "GET", "/api/queue", headers=token).json()["queue"]:
            if entry["run"] == run and entry["target"] == "on_gpu":
                return entry
        return None

    entry = wait_until(queued, 30, message="on_gpu in the queue")
    assert entry["id"] == f"{run}:2:1" and entry["step"] == f"{run}:2" and entry["module"] == "studioapp"
    assert entry["assigned"] is False and entry["worker"] is None
    assert entry["waiting"] == "no worker matches requires gpu:a100"
    assert isinstance(entry["created_at"], float) and entry["execute_after"] is None
    listing = request(server, "GET", "/api/queue?limit=1", headers=token).json()
    assert len(listing["queue"]) == 1 and listing["total"] >= 1
    assert request(server, "GET", "/api/queue?limit=0", headers=token).status == 400
    request(server, "POST", f"/api/executions/{run}:1:1/cancel", headers=token, body="{}")
    wait_until(lambda: queued() is None, 30, message="the cancelled step to leave the queue")


def test_graph_events_arrive_on_the_run_topic(server: Server, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    token = {"Authorization": f"token {TOKEN}", "Content-Type": "application/json"}
    run = request(server, "POST", "/api/runs", headers=token, body=json.dumps(
        {"module": "studioapp", "target": "shapes", "args": [3], "kwargs": {"gate": str(gate)}})).json()["run"]
    root = f"{run}:1:1"

    async def follow() -> list[dict]:
        ws = await _socket(server, query=f"?token={TOKEN}")
        pushes: list[dict] = []
        snapshot = (await _call(ws, 1, "subscribe", {"topic": f"run:{run}"}, pushes))["ok"]
        assert snapshot["id"] == run and not snapshot["dependencies"] and not snapshot["groups"]
        gate.write_text("go")
        events: list[dict] = []
        while not any(e["type"] == "result" and e["execution"] == root for e in events):
            message = await asyncio.wait_for(ws.read_message(), 30)
            assert message is not None
            for item in (frame if isinstance(frame := json.loads(message), list) else [frame]):
                if item.get("op") == "events":
                    events.extend(e["data"] for e in item["events"] if e["topic"] == f"run:{run}")
        ws.close()
        return events

    events = asyncio.run(follow())
    groups = [e for e in events if e["type"] == "group"]
    assert groups == [{**groups[0], "type": "group", "execution": root, "name": "squares"}]
    assert isinstance(groups[0]["group"], int)
    steps = {e["target"]: e for e in events if e["type"] == "step" and e["target"] != "shapes"}
    squares = [e for e in events if e["type"] == "step" and e["target"] == "square"]
    assert len(squares) == 3 and all(e["group"] == groups[0]["group"] for e in squares)
    dependencies = {(e["execution"], e["dependency"]) for e in events if e["type"] == "dependency"}
    assert {(root, e["execution"]) for e in squares} <= dependencies
    child_runs = [e for e in events if e["type"] == "child_run"]
    assert len(child_runs) == 1
    child = child_runs[0]
    assert child["parent"] == root and child["module"] == "studioapp" and child["target"] == "child"
    assert child["run"] != run and re.fullmatch(r"R\w+", child["run"])
    assert steps["child"]["kind"] == "workflow"
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    # the snapshot afterwards agrees with what the events said
    snapshot = server.get(f"api/runs/{run}")
    assert {(d["execution"], d["dependency"]) for d in snapshot["dependencies"]} >= dependencies
    assert [c["id"] for c in snapshot["child_runs"]] == [child["run"]]
