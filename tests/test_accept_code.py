"""`coflux worker --accept-code` (issue 21, item 1, first part): a worker opts in to code shipped
by value, the server knows which workers did (api/workers), and a step that carries shipped code
is never given to a worker that did not opt in: it waits, saying why, until one that did is
there. Real server and worker processes; the step here carries `options.code` as a kernel
shipping a cell's task would (tests/jupyter/test_jupyter_shipping.py ships from a kernel)."""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
from pathlib import Path

import cloudpickle
import pytest
from harness import Server, Worker, wait_until

from coflux.blobs import BlobClient


def post(server: Server, path: str, body: dict) -> dict:
    request = urllib.request.Request(server.url + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Authorization": f"token {server.token}",
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


SHIPPED_SOURCE = "def squares(x):\n    return ['shipped', x]\n"


def ship(server: Server) -> dict:
    """Store a function by value in the server's blob store, as a kernel does; the step option."""
    namespace: dict = {"__name__": "not_importable_anywhere"}  # so cloudpickle takes it by value
    exec(SHIPPED_SOURCE, namespace)
    data = cloudpickle.dumps(namespace["squares"])
    key = BlobClient(server.url, server.token).put_bytes(data)
    return {"hash": "1" * 64, "blob": key}


def test_shipped_code_waits_for_a_worker_that_accepts_code(tmp_path: Path) -> None:
    server = Server(tmp_path / "data").start()
    plain = Worker(server, ["resumeui"], log=tmp_path / "plain.log").start()
    accepting = None
    try:
        plain.wait_registered()
        (listed,) = server.workers()
        assert listed["accepts_code"] is False

        shipped = post(server, "api/runs", {"module": "resumeui", "target": "squares", "kwargs": {"x": 3},
                                            "options": {"code": ship(server)}})["run"]
        plain_run = post(server, "api/runs", {"module": "resumeui", "target": "squares", "kwargs": {"x": 4}})["run"]
        wait_until(lambda: server.get(f"api/runs/{plain_run}")["status"] == "value", timeout=30)
        queue = server.get("api/queue")
        waiting = json.dumps(queue)
        assert f"{shipped}:1:1" in waiting
        assert "no worker accepts shipped code (start one with --accept-code)" in waiting
        assert server.get(f"api/runs/{shipped}")["steps"][0]["executions"][0]["session"] is None

        accepting = Worker(server, ["resumeui"], log=tmp_path / "accepting.log", extra=["--accept-code"]).start()
        wait_until(lambda: server.get(f"api/runs/{shipped}")["status"] == "value", timeout=30)
        # It ran the shipped function, not the module's own `squares`.
        assert server.get(f"api/runs/{shipped}/result")["value"] == {"v": ["shipped", 3]}
        sessions = {s["id"]: s for s in server.workers()}
        root = server.get(f"api/runs/{shipped}")["steps"][0]["executions"][0]
        assert sessions[root["session"]]["accepts_code"] is True
    finally:
        if accepting is not None:
            accepting.stop()
        plain.stop()
        server.stop()


def test_shipped_code_is_refused_from_a_principal_without_the_right(tmp_path: Path) -> None:
    # The check every submit passes through (HTTP api/runs, the WebSocket's submit/call/rerun);
    # real tokens through real routes: test_a_service_token_ships_code_only_when_created_with_allow_code.
    from coflux_server.errors import Forbidden
    from coflux_server.handlers import _check_may_ship_code
    from coflux_server.principal import SUPER, Principal

    service = Principal(name="ci", kind="service")
    with pytest.raises(Forbidden, match="^this token may not ship code$"):
        _check_may_ship_code(service, {"code": {"hash": "1" * 64, "blob": "2" * 64}})
    _check_may_ship_code(service, {"retries": {"limit": 1}})  # module code: fine
    _check_may_ship_code(Principal(name="ci", kind="service", may_ship_code=True), {"code": {}})
    _check_may_ship_code(SUPER, {"code": {}})

    # A malformed `options.code` is refused with one clear line, nothing recorded.
    server = Server(tmp_path / "data").start()
    try:
        with pytest.raises(urllib.error.HTTPError) as refused:
            post(server, "api/runs", {"module": "resumeui", "target": "squares", "kwargs": {"x": 3},
                                      "options": {"code": {"hash": "x"}}})
        assert refused.value.code == 400
        assert "options.code must be {hash, blob}" in refused.value.read().decode()
        assert server.get("api/runs")["runs"] == []
    finally:
        server.stop()


def test_shipped_code_whose_blob_is_gone_fails_saying_so(tmp_path: Path) -> None:
    server = Server(tmp_path / "data").start()
    worker = Worker(server, ["resumeui"], log=tmp_path / "worker.log", extra=["--accept-code"]).start()
    try:
        worker.wait_registered()
        run = post(server, "api/runs", {"module": "resumeui", "target": "squares", "kwargs": {"x": 1},
                                        "options": {"code": {"hash": "1" * 64, "blob": "3" * 64}}})["run"]
        wait_until(lambda: server.get(f"api/runs/{run}")["status"] == "error", timeout=30)
        error = server.get(f"api/runs/{run}")["steps"][0]["executions"][0]["result"]["error"]
        assert f"the shipped code (blob {'3' * 64}) could not be read from the server" in error["message"]
    finally:
        worker.stop()
        server.stop()


def _ship_source(server: Server, source: str, name: str) -> dict:
    namespace: dict = {"__name__": "not_importable_anywhere"}
    exec(source, namespace)
    data = cloudpickle.dumps(namespace[name])
    return {"hash": hashlib.sha256(source.encode()).hexdigest(), "blob": BlobClient(server.url, server.token).put_bytes(data),
            "size": len(data)}


def test_the_workers_code_cache_keeps_the_recently_used_within_its_limit(tmp_path: Path) -> None:
    """Each shipped function is cached as a file named by its sha256; past COFLUX_CODE_CACHE_BYTES
    the least recently used go. A function whose file went is fetched again when it is next
    called; a blob name that is no sha256 is refused."""
    server = Server(tmp_path / "data").start()
    cache = tmp_path / "code-cache"
    shipped = [_ship_source(server, f"def squares(x):\n    return ['shipped', x, {i}, {'pad' * (40 * i)!r}]\n",
                            "squares") for i in range(4)]
    limit = sum(c["size"] for c in shipped[2:]) + 1  # room for the two newest only
    # One process, so each call loads from the file cache (the memory cache is per process).
    worker = Worker(server, ["resumeui"], log=tmp_path / "worker.log", extra=["--accept-code"], concurrency=1,
                    env={"COFLUX_CODE_CACHE": str(cache), "COFLUX_CODE_CACHE_BYTES": str(limit)}).start()

    def run(code: dict, x: int) -> dict:
        run_id = post(server, "api/runs", {"module": "resumeui", "target": "squares", "kwargs": {"x": x},
                                           "options": {"code": {"hash": code["hash"], "blob": code["blob"]}}})["run"]
        wait_until(lambda: server.get(f"api/runs/{run_id}")["status"] in ("value", "error"), timeout=30)
        return server.get(f"api/runs/{run_id}")

    try:
        worker.wait_registered()
        for i, code in enumerate(shipped):
            assert run(code, i)["status"] == "value"
        files = {p.name: p.stat().st_size for p in cache.iterdir()}
        assert set(files) == {shipped[2]["blob"], shipped[3]["blob"]}, files
        assert sum(files.values()) <= limit
        # The first, evicted from the files, still runs in a new worker (nothing in memory):
        # fetched from the server again, and now the least recently used file goes.
        worker.stop()
        worker = Worker(server, ["resumeui"], log=tmp_path / "worker2.log", extra=["--accept-code"], concurrency=1,
                        env={"COFLUX_CODE_CACHE": str(cache), "COFLUX_CODE_CACHE_BYTES": str(limit)}).start()
        worker.wait_registered()
        assert run(shipped[0], 5)["status"] == "value"
        assert {p.name for p in cache.iterdir()} == {shipped[0]["blob"], shipped[3]["blob"]}
        # A blob name that is no sha256 never reaches a worker (which would refuse it too).
        with pytest.raises(urllib.error.HTTPError) as refused:
            run({"hash": "2" * 64, "blob": "../" + "4" * 61}, 1)
        assert refused.value.code == 400
    finally:
        worker.stop()
        server.stop()


async def _ws_op(server: Server, token: str, op: str, params: dict) -> dict:
    """One request (`submit`, `rerun`, ...) over the real WebSocket with `token`; the server's reply."""
    import asyncio

    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    ws = await websocket_connect(HTTPRequest(server.url.replace("http://", "ws://") + "api/ws",
                                             headers={"Authorization": f"token {token}"}))
    try:
        await ws.write_message(json.dumps({"op": op, "id": 1, "params": params}))
        while True:
            message = await asyncio.wait_for(ws.read_message(), 10)
            assert message is not None, "the server closed the connection"
            frame = json.loads(message)
            for item in frame if isinstance(frame, list) else [frame]:
                if item.get("re") == 1:
                    return item
    finally:
        ws.close()


def test_a_service_token_ships_code_only_when_created_with_allow_code(tmp_path: Path) -> None:
    import asyncio

    from harness import run_cli

    def create(*flags: str) -> str:
        done = run_cli("tokens", "create", *flags, env=server.env(), timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def post_as(token: str, body: dict) -> tuple[int, dict]:
        request = urllib.request.Request(server.url + "api/runs", data=json.dumps(body).encode(), method="POST",
                                         headers={"Authorization": f"token {token}",
                                                  "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    server = Server(tmp_path / "data").start()
    worker = Worker(server, ["resumeui"], log=tmp_path / "worker.log", extra=["--accept-code"]).start()
    try:
        worker.wait_registered()
        plain = create("--name", "ci-plain")
        allowed = create("--name", "ci-shipper", "--allow-code")
        code = ship(server)
        shipped = {"module": "resumeui", "target": "squares", "kwargs": {"x": 3}, "options": {"code": code}}

        # Without the right: refused over HTTP and over the WebSocket, nothing recorded.
        status, body = post_as(plain, shipped)
        assert status == 403 and body["error"]["message"] == "this token may not ship code", body
        reply = asyncio.run(_ws_op(server, plain, "submit", {"module": "resumeui", "target": "squares", "args": [],
                                                      "kwargs": {"x": {"v": 3}}, "options": {"code": code}}))
        assert reply["err"] == {"code": "forbidden", "message": "this token may not ship code"}, reply
        assert server.get("api/runs")["runs"] == []
        # The same token runs the module's own code (no `options.code`) as usual.
        status, body = post_as(plain, {"module": "resumeui", "target": "squares", "kwargs": {"x": 1}})
        assert status == 201, body

        # With --allow-code: both ways accepted, recorded as that token's doing.
        status, body = post_as(allowed, shipped)
        assert status == 201, body
        reply = asyncio.run(_ws_op(server, allowed, "submit", {"module": "resumeui", "target": "squares", "args": [],
                                                        "kwargs": {"x": {"v": 5}}, "options": {"code": code}}))
        assert "ok" in reply, reply
        runs = {run["id"]: run for run in server.get("api/runs")["runs"]}
        assert len(runs) == 3 and body["run"] in runs and reply["ok"]["run"] in runs
        assert server.get(f"api/runs/{body['run']}")["by"] == "ci-shipper"
        wait_until(lambda: server.get(f"api/runs/{reply['ok']['run']}")["status"] == "value", timeout=30)
        assert server.get(f"api/runs/{reply['ok']['run']}/result")["value"] == {"v": ["shipped", 5]}
        # Nor may the token without the right re-run a step with other shipped code.
        step = f"{reply['ok']['run']}:1"
        refused = asyncio.run(_ws_op(server, plain, "rerun", {"step": step, "code": code}))
        assert refused["err"] == {"code": "forbidden", "message": "this token may not ship code"}, refused
        assert len(server.get(f"api/runs/{reply['ok']['run']}")["steps"][0]["executions"]) == 1
    finally:
        worker.stop()
        server.stop()


def test_a_worker_refuses_a_blob_name_that_is_no_sha256(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from coflux import shipping

    monkeypatch.setenv("COFLUX_CODE_CACHE", str(tmp_path / "cache"))
    for key in ("../../etc/passwd", "/etc/passwd", "A" * 64, "a" * 63):
        with pytest.raises(shipping.ShippedCodeError, match="names no valid blob"):
            shipping.load({"hash": "1" * 64, "blob": key}, module="m", name="t", worker="w")
