"""RunWidget headless: fed events directly, and following a real run on a `coflux server`."""

from __future__ import annotations

import time

import pytest
from jx_helpers import start_worker, stop_process

from coflux.client import Client
from coflux.widgets import RunWidget


def snapshot(run_id: str, *steps: dict) -> dict:
    return {"id": run_id, "module": "m", "target": "wf", "steps": list(steps)}


def step(run_id: str, number: int, target: str, *executions: dict, parent: str | None = None) -> dict:
    return {"id": f"{run_id}:{number}", "number": number, "module": "m", "target": target,
            "type": "workflow" if number == 1 else "task", "parent": parent, "executions": list(executions)}


def test_events_merge_into_steps():
    w = RunWidget()
    w.run_id = "R1"
    # Events that arrive before the snapshot has been read are buffered, then applied.
    w.handle_event({"type": "started", "execution": "R1:2:1", "at": 10.0})
    w.load_snapshot(snapshot("R1", step("R1", 1, "wf", {"id": "R1:1:1", "started_at": 9.0}),
                             step("R1", 2, "t", {"id": "R1:2:1", "assigned_at": 9.5}, parent="R1:1:1")))
    assert (w.module, w.target, w.status) == ("m", "wf", "running")
    assert [(s["target"], s["status"]) for s in w.steps] == [("wf", "running"), ("t", "running")]

    w.handle_event({"type": "step", "step": "R1:3", "number": 3, "execution": "R1:3:1", "parent": "R1:1:1",
                    "module": "m", "target": "u", "kind": "task"})
    w.handle_event({"type": "result", "execution": "R1:3:1", "kind": "error", "at": 11.0,
                    "error": {"type": "builtins.KeyError", "message": "'k'"}})
    w.handle_event({"type": "assigned", "execution": "R1:3:1"})  # late: never moves a step back
    w.handle_event({"type": "result", "execution": "R1:2:1", "kind": "value", "at": 10.5})
    w.flush()
    by_target = {s["target"]: s for s in w.steps}
    assert by_target["u"]["status"] == "error" and by_target["u"]["error"] == "KeyError: 'k'"
    assert by_target["t"]["status"] == "value"
    assert by_target["t"]["finished_at"] - by_target["t"]["started_at"] == 0.5

    # A retry is a new attempt of the same step: the row follows it.
    w.handle_event({"type": "assigned", "execution": "R1:3:2"})
    w.handle_event({"type": "result", "execution": "R1:1:1", "kind": "value", "at": 12.0})
    w.flush()
    by_target = {s["target"]: s for s in w.steps}
    assert (by_target["u"]["execution"], by_target["u"]["status"], by_target["u"]["error"]) == \
        ("R1:3:2", "assigned", "")
    assert w.status == "value"
    assert repr(w) == "<RunWidget R1 m/wf: value (1 assigned, 2 value)>"

    # What the front end gets: the ESM and the traits, with no external imports.
    state = w.get_state()
    assert "export default" in state["_esm"] and "import " not in state["_esm"]
    assert state["steps"] == w.steps and state["status"] == "value"


def test_trait_updates_are_reassignments():
    w = RunWidget()
    w.run_id = "R2"
    w.load_snapshot(snapshot("R2"))
    seen = []
    w.observe(lambda change: seen.append(change["new"]), names="steps")
    w.handle_event({"type": "step", "step": "R2:1", "number": 1, "execution": "R2:1:1", "module": "m",
                    "target": "wf", "kind": "workflow"})
    deadline = time.monotonic() + 5
    while not seen and time.monotonic() < deadline:  # coalesced: flushed by a timer
        time.sleep(0.01)
    assert seen and seen[-1][0]["status"] == "pending"
    before = w.steps
    w.handle_event({"type": "started", "execution": "R2:1:1", "at": 1.0})
    w.flush()
    assert w.steps is not before and before[0]["status"] == "pending"  # old value untouched


@pytest.fixture(scope="module")
def remote_worker(coflux_server):
    url, token = coflux_server
    worker = start_worker(url, token, "cfjx_remote")
    yield
    stop_process(worker)


def test_widget_follows_a_real_run(coflux_server, remote_worker):
    url, token = coflux_server
    with Client(url, token) as client:
        deadline = time.monotonic() + 30
        while True:  # until the worker has registered its workflows
            try:
                run = client.submit("cfjx_remote", "sum_of_squares", 3)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        w = run.widget()
        assert w.run_id == run.id
        assert run.result(timeout=30) == 14
        deadline = time.monotonic() + 10
        while (w.status != "value" or len(w.steps) < 4) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert w.status == "value"
        assert [(s["target"], s["status"]) for s in w.steps] == \
            [("sum_of_squares", "value")] + [("square", "value")] * 3
        assert all(s["parent"] == f"{run.id}:1:1" for s in w.steps[1:])
        w.close()
        assert not client._listeners.get(f"run:{run.id}")
