"""`coflux worker --accept-code` (issue 21, item 1, first part): a worker opts in to code shipped
by value, the server knows which workers did (api/workers), and a step that carries shipped code
is never given to a worker that did not opt in: it waits, saying why, until one that did is
there. Real server and worker processes; shipping a cell's function itself is not done yet (the
step here carries `options.code` as a shipping kernel's will)."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from harness import Server, Worker, wait_until


def post(server: Server, path: str, body: dict) -> dict:
    request = urllib.request.Request(server.url + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Authorization": f"token {server.token}",
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_shipped_code_waits_for_a_worker_that_accepts_code(tmp_path: Path) -> None:
    server = Server(tmp_path / "data").start()
    plain = Worker(server, ["resumeui"], log=tmp_path / "plain.log").start()
    accepting = None
    try:
        plain.wait_registered()
        (listed,) = server.workers()
        assert listed["accepts_code"] is False

        shipped = post(server, "api/runs", {"module": "resumeui", "target": "squares", "kwargs": {"x": 3},
                                            "options": {"code": {"hash": "0" * 64}}})["run"]
        plain_run = post(server, "api/runs", {"module": "resumeui", "target": "squares", "kwargs": {"x": 4}})["run"]
        wait_until(lambda: server.get(f"api/runs/{plain_run}")["status"] == "value", timeout=30)
        queue = server.get("api/queue")
        waiting = json.dumps(queue)
        assert f"{shipped}:1:1" in waiting
        assert "no worker accepts shipped code (start one with `coflux worker --accept-code`)" in waiting
        assert server.get(f"api/runs/{shipped}")["steps"][0]["executions"][0]["session"] is None

        accepting = Worker(server, ["resumeui"], log=tmp_path / "accepting.log", extra=["--accept-code"]).start()
        wait_until(lambda: server.get(f"api/runs/{shipped}")["status"] == "value", timeout=30)
        sessions = {s["id"]: s for s in server.workers()}
        root = server.get(f"api/runs/{shipped}")["steps"][0]["executions"][0]
        assert sessions[root["session"]]["accepts_code"] is True
    finally:
        if accepting is not None:
            accepting.stop()
        plain.stop()
        server.stop()
