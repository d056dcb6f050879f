"""defer and delay (design.md section 3): among unassigned executions with the same defer key only the
latest is kept (the others resolve as `deferred(latest)`); with a delay this debounces. A delay is
a timer: the execution starts at `created + delay`, not before and not a polling period after."""

from __future__ import annotations

import re

from .sched_helpers import executions, kinds, lines, steps_of, wait_snapshot

MODULE = "deferral"

# How late a due execution may start: a timer wakes the loop at once (a polling loop would not).
PROMPT = 0.5


def follow(run: dict, execution_id: str) -> str:
    """The end of an execution's successor chain (within the run)."""
    by_id = {e["id"]: e for step in run["steps"] for e in step["executions"]}
    while by_id[execution_id]["result"] and by_id[execution_id]["result"]["successor"]:
        execution_id = by_id[execution_id]["result"]["successor"]
    return execution_id


def test_defer_keeps_only_the_latest_and_waiters_follow_it(sched, tmp_path):
    log = tmp_path / "log"
    salt = tmp_path.name
    run_id, value = sched.run(MODULE, "burst", str(log), salt)
    # Everyone sees the latest's result: three equal calls, then three calls that share `key` only.
    assert value["values"] == ["same", "same", "same", "v2", "v2", "v2", "w"]
    assert sorted(lines(log)) == sorted(["debounced same", f"save k-{salt}=v2", f"save other-{salt}=w"])

    run = sched.inspect(run_id)
    ids = value["ids"]
    assert kinds(run, "debounced") == ["deferred", "deferred", "value"]
    # Each deferred one points at the one that replaced it; the chain ends at the latest.
    assert [follow(run, e["id"]) for e in executions(run, "debounced")] == [ids[2]] * 3
    assert kinds(run, "save") == ["deferred", "deferred", "value", "value"]
    assert [follow(run, e["id"]) for e in executions(run, "save")] == [ids[5]] * 3 + [ids[6]]
    for execution in executions(run, "save")[:2] + executions(run, "debounced")[:2]:
        assert execution["assigned_at"] is None  # never ran
    # Debounce: the kept one still starts only after its own delay.
    latest = executions(run, "save")[2]
    assert latest["assigned_at"] - latest["created_at"] >= 0.4 - 0.01
    # The replaced ones resolved when the next one came, not when their own delay was over.
    for replaced in executions(run, "save")[:2]:
        assert replaced["result"]["at"] - replaced["created_at"] < 0.4


def test_delay_in_seconds_and_as_timedelta(sched, tmp_path):
    log = tmp_path / "log"
    submitted = sched.submit(MODULE, "delays", str(log))
    # Meanwhile the run says why the delayed steps have not started.
    pending = wait_snapshot(sched, submitted.id, lambda r: len(steps_of(r, "later")) == 3, message="the steps")
    for step in steps_of(pending, "later")[:2]:
        assert re.fullmatch(r"delayed until \d\d:\d\d:\d\d", step["executions"][0]["waiting"])
    value = submitted.result(timeout=30)
    run_id = submitted.id
    assert value == ["seconds", "timedelta", "none"]
    run = sched.inspect(run_id)
    by_label = {step["arguments"][1]["v"]: step["executions"][0] for step in steps_of(run, "later")}
    for label, delay in (("seconds", 0.5), ("timedelta", 0.8)):
        execution = by_label[label]
        assert abs(execution["execute_after"] - execution["created_at"] - delay) < 0.01
        assert execution["assigned_at"] >= execution["execute_after"]
        assert execution["started_at"] >= execution["execute_after"]
        assert execution["assigned_at"] - execution["execute_after"] < PROMPT, "started late: polling?"
    # with_delay(0) removes the decorator's delay.
    assert by_label["none"]["execute_after"] is None
    assert by_label["none"]["started_at"] < by_label["seconds"]["execute_after"]
    # The run's order follows the delays.
    assert lines(log) == ["none", "seconds", "timedelta"]


def test_workflow_delay(sched, tmp_path):
    log = tmp_path / "log"
    run_id, value = sched.run(MODULE, "delayed_flow", str(log))
    assert value == "flow"
    (execution,) = sched.inspect(run_id)["steps"][0]["executions"]
    assert abs(execution["execute_after"] - execution["created_at"] - 0.5) < 0.01
    assert 0 <= execution["assigned_at"] - execution["execute_after"] < PROMPT
