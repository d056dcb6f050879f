"""cancel (design.md section 3): cancels the execution and, recursively, every unfinished descendant,
child runs included. Running executions are stopped (their processes killed); waiters get
cf.ExecutionCancelled. Three ways in: `execution.cancel()`, `coflux runs cancel`, and the HTTP API."""

from __future__ import annotations

import pytest
from harness import wait_until

import coflux as cf

from .sched_helpers import kinds, lines, process_gone, wait_lines

MODULE = "cancelling"


def started(log) -> dict[str, int]:
    """name -> pid of every `hang`/`hang_inside` that has started."""
    return {line.split()[0]: int(line.split()[1]) for line in lines(log) if not line.startswith(("finished", "waiter"))}


def assert_killed(pids) -> None:
    for pid in pids:
        wait_until(lambda pid=pid: process_gone(pid), 5, message=f"process {pid} to be killed")


def test_cli_cancels_a_run_and_every_unfinished_descendant(sched, tmp_path):
    log = tmp_path / "log"
    run = sched.submit(MODULE, "tree", str(log))
    wait_until(lambda: set(started(log)) == {"a", "child-run", "middle", "inner"}, 30,
               message="the whole tree to be running")
    pids = started(log)
    snapshot = sched.inspect(run.id)
    (child_run,) = snapshot["child_runs"]

    result = sched.cli("runs", "cancel", run.id)
    assert result.returncode == 0, result.stderr
    # The workflow, `a`, `hang_inside` and the task inside it, and the child run's two steps (the
    # step that started the child run is `spawned`: already resolved, it points at the child run).
    head, _, listed = result.stdout.strip().partition(": cancelled 6 execution(s): ")
    assert head == run.id, result.stdout
    assert set(listed.split(", ")) == {f"{run.id}:1:1", f"{run.id}:2:1", f"{run.id}:4:1", f"{run.id}:5:1",
                                       f"{child_run['id']}:1:1", f"{child_run['id']}:2:1"}
    with pytest.raises(cf.ExecutionCancelled):
        run.result(timeout=10)

    final = sched.inspect(run.id)
    for step in final["steps"]:
        last = step["executions"][-1]["result"]
        assert last is not None
        if step["target"] == "hang_flow":
            assert last["kind"] == "spawned" and last["successor"] == f"{child_run['id']}:1:1"
        else:
            assert last["kind"] == "cancelled", step
    child = sched.inspect(child_run["id"])
    assert [s["executions"][-1]["result"]["kind"] for s in child["steps"]] == ["cancelled", "cancelled"]
    assert_killed(pids.values())
    assert lines(log, "finished") == []

    # Nothing is left to cancel.
    again = sched.cli("runs", "cancel", run.id)
    assert again.returncode == 0 and "cancelled 0 execution(s) (nothing was running)" in again.stdout


@pytest.mark.parametrize("how", ["http", "cli"])
def test_cancel_one_execution_and_its_waiter_sees_execution_cancelled(sched, tmp_path, how):
    log = tmp_path / "log"
    run = sched.submit(MODULE, "waiter", str(log))
    wait_lines(log, 1)
    pid = started(log)["w"]
    task = f"{run.id}:2:1"
    if how == "http":
        status, body = sched.post(f"api/executions/{task}/cancel")
        assert (status, body) == (200, {"cancelled": [task]})
    else:
        result = sched.cli("runs", "cancel", task)
        assert result.returncode == 0 and result.stdout.strip() == f"{task}: cancelled 1 execution(s): {task}"
    assert run.result(timeout=10) == "cancelled: True"
    assert lines(log, "waiter") == ["waiter saw the cancel"]
    assert kinds(sched.inspect(run.id), "hang") == ["cancelled"]
    assert_killed([pid])


def test_execution_cancel_from_the_workflow(sched, tmp_path):
    log = tmp_path / "log"
    run_id, value = sched.run(MODULE, "self_cancel", str(log))
    assert value == "cancelled"
    assert kinds(sched.inspect(run_id), "hang") == ["cancelled"]
    assert_killed([started(log)["x"]])
    assert lines(log, "finished") == []


def test_cancelling_queued_work_on_a_busy_worker(sched, one_slot, tmp_path):
    log = tmp_path / "log"
    first = sched.submit("oneslot", "hold", str(log), "a", 30)
    wait_lines(log, 1)
    (pid,) = started(log).values()
    queued = sched.submit("oneslot", "hold", str(log), "b", 30)  # queued behind `a` (the only slot)
    assert sched.client().cancel(queued.id) == [f"{queued.id}:1:1"]
    assert sched.client().cancel(first.id) == [f"{first.id}:1:1"]
    for run in (first, queued):
        with pytest.raises(cf.ExecutionCancelled):
            run.result(timeout=10)
    assert_killed([pid])
    # The slot is usable again, and the cancelled queued run never started.
    assert sched.run("oneslot", "quick", str(log))[1] == "quick"
    assert [line.split()[0] for line in lines(log)] == ["a", "quick"]
    assert sched.inspect(queued.id)["steps"][0]["executions"][0]["started_at"] is None


def test_a_cancelled_execution_is_not_retried(sched, tmp_path):
    log = tmp_path / "log"
    run = sched.submit(MODULE, "retried_waiter", str(log))
    wait_lines(log, 1)
    assert sched.client().cancel(f"{run.id}:2:1") == [f"{run.id}:2:1"]
    assert run.result(timeout=10) == "cancelled"
    assert kinds(sched.inspect(run.id), "hang_retried") == ["cancelled"]  # retries=3, but no new attempt
    assert len(lines(log)) == 1
