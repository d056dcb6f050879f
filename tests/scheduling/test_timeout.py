"""timeout (design.md section 3): wall clock from start. On expiry a headless worker kills the process,
the execution is recorded as `timeout`, its descendants are cancelled, retries apply, and waiters
get cf.ExecutionTimeout."""

from __future__ import annotations

import pytest
from harness import wait_until

from .sched_helpers import executions, kinds, lines, process_gone, wait_lines

MODULE = "timeouts"


def pids(log, prefix: str = "pid") -> list[int]:
    return [int(line.split()[-1]) for line in lines(log, prefix)]


@pytest.mark.parametrize("name", ["sleepy", "sleepy_timedelta"])
def test_the_process_is_killed_and_the_waiter_gets_execution_timeout(sched, tmp_path, name):
    log = tmp_path / "log"
    run_id, value = sched.run(MODULE, "catch_timeout", name, str(log))
    assert value == {"caught": "ExecutionTimeout", "terminated": True}
    (execution,) = executions(sched.inspect(run_id), name)
    assert execution["result"]["kind"] == "timeout" and execution["result"]["successor"] is None
    ran = execution["result"]["at"] - execution["assigned_at"]
    assert 0.5 - 0.02 <= ran < 3, ran
    (pid,) = pids(log)
    wait_until(lambda: process_gone(pid), 5, message=f"process {pid} to be killed")
    assert lines(log, "finished") == []


def test_descendants_are_cancelled(sched, tmp_path):
    log = tmp_path / "log"
    run_id, value = sched.run(MODULE, "catch_timeout", "parent_of_child", str(log))
    assert value["caught"] == "ExecutionTimeout"
    run = sched.inspect(run_id)
    assert kinds(run, "parent_of_child") == ["timeout"]
    wait_until(lambda: kinds(sched.inspect(run_id), "long_child") == ["cancelled"], 10,
               message="the child to be cancelled")
    for pid in pids(log, "parent") + pids(log, "child"):
        wait_until(lambda pid=pid: process_gone(pid), 5, message=f"process {pid} to be killed")
    assert lines(log, "parent finished") == lines(log, "child finished") == []


def test_timeouts_are_retried(sched, tmp_path):
    log = tmp_path / "log"
    run_id, value = sched.run(MODULE, "catch_timeout", "sleepy_retried", str(log))
    assert value["caught"] == "ExecutionTimeout"  # after the retry timed out too
    attempts = executions(sched.inspect(run_id), "sleepy_retried")
    assert [e["result"]["kind"] for e in attempts] == ["timeout", "timeout"]
    assert attempts[0]["result"]["successor"] == attempts[1]["id"]
    assert abs(attempts[1]["execute_after"] - attempts[1]["created_at"] - 0.1) < 0.01
    assert len(set(pids(log))) == 2  # a fresh process each time


def test_the_timeout_counts_from_the_start_not_from_queueing(sched, one_slot, tmp_path):
    log = tmp_path / "log"
    holder = sched.submit("oneslot", "hold", str(log), "a", 1.0)
    wait_lines(log, 1)
    run_id, value = sched.run("oneslot", "brief", str(log))  # waits ~1 s for the only slot
    assert value == "brief" and holder.result(timeout=30) == "a"
    (execution,) = sched.inspect(run_id)["steps"][0]["executions"]
    held = sched.inspect(holder.id)["steps"][0]["executions"][0]
    assert execution["result"]["kind"] == "value"
    assert execution["started_at"] >= held["result"]["at"]
    assert execution["result"]["at"] - execution["created_at"] > 0.6  # longer than its timeout in all
