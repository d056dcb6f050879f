"""Each hand-out of an execution to a worker has a number (issue 22): the `execute` push carries
it, the worker sends it back with `started`, `result` and `release`, and the server ignores what
is about an older hand-out than the latest, so a message that crossed a new assignment (a
`release` queued while the server was down, arriving after the restarted server gave the work
out again) can never make a body run twice.

A real `coflux server`; the worker is a raw protocol connection, so that the test decides which
hand-out each message is about. The whole system under server kills is tests/test_server_kills.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import Server, free_port, wait_until

from coflux.client import Client
from coflux.connection import Connection

TARGETS = {"myapp.workflows": {"identity": {"type": "workflow", "parameters": [{"name": "value"}], "options": {}}}}


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[Server]:
    server = Server(tmp_path / "data", port=free_port()).start()
    try:
        yield server
    finally:
        server.stop()


def _call(connection: Connection, op: str, params: dict) -> Any:
    return connection.request(op, params).result(15)


def _next_execute(pushes: list[dict], after: int) -> dict:
    """The first `execute` push beyond the first `after` pushes."""
    def found() -> dict | None:
        return next((p for p in pushes[after:] if p.get("op") == "execute"), None)
    return wait_until(found, 15, message="an execute push")


def test_messages_about_an_older_hand_out_change_nothing(server: Server) -> None:
    pushes: list[dict] = []
    worker = Connection(server.url, server.token, name="raw-worker", on_push=pushes.append).start()
    client = Client(server.url, server.token)
    try:
        _call(worker, "register", {"kind": "headless", "name": "raw", "workspace": "default", "concurrency": 1,
                                   "targets": TARGETS, "session": None})
        run = client.submit("myapp.workflows", "identity", 42)
        first = _next_execute(pushes, 0)
        execution = first["execution"]
        assert first["assignment"] == 1

        # Handed back unstarted: queued again and handed out anew (this worker is its only host).
        seen = len(pushes)
        assert _call(worker, "release", {"executions": [execution], "assignments": {execution: 1}}) == \
            {"released": [execution]}
        second = _next_execute(pushes, seen)
        assert (second["execution"], second["assignment"]) == (execution, 2)

        # The first hand-out's messages arrive late: none of them changes anything.
        worker.notify("started", {"execution": execution, "at": time.time() - 60, "assignment": 1})
        assert _call(worker, "release", {"executions": [execution], "assignments": {execution: 1}}) == \
            {"released": []}
        assert _call(worker, "result", {"execution": execution, "kind": "value", "value": {"v": 7},
                                        "assignment": 1}) == {"ok": True, "stale": True}
        (shown,) = client.get_run(run.id)["steps"][0]["executions"]
        assert (shown["started_at"], shown["result"]) == (None, None)  # still assigned, not begun

        # The latest hand-out is what counts; once it has begun it is never handed back.
        began = time.time() - 30
        worker.notify("started", {"execution": execution, "at": began, "assignment": 2})
        assert _call(worker, "release", {"executions": [execution], "assignments": {execution: 2}}) == \
            {"released": []}
        assert _call(worker, "release", {"executions": [execution]}) == {"released": []}  # nor without a number
        assert _call(worker, "result", {"execution": execution, "kind": "value", "value": {"v": 42},
                                        "assignment": 2}) == {"ok": True}
        assert run.result(timeout=15) == 42
        (shown,) = client.get_run(run.id)["steps"][0]["executions"]
        assert shown["started_at"] == began and shown["result"]["kind"] == "value"
        assert [p["assignment"] for p in pushes if p.get("op") == "execute"] == [1, 2]  # handed out twice only
    finally:
        client.close()
        worker.close()
