"""Re-running a step (design.md section 3): `coflux runs rerun R:n` or POST api/steps/R:n/rerun makes a
new attempt that ignores cache and memo, cancels the step's active attempts, leaves the rest of
the run as it was, and marks the steps that consumed the old result as stale."""

from __future__ import annotations

import json

import pytest
from harness import wait_until

from .sched_helpers import executions, lines, process_gone, steps_of, wait_lines

MODULE = "rerunning"


def step_of(run: dict, target: str) -> dict:
    (step,) = steps_of(run, target)
    return step


def test_rerun_a_finished_step(sched, tmp_path):
    log = tmp_path / "log"
    run_id, value = sched.run(MODULE, "pipeline", str(log), 1)
    assert value == 102  # produce: 100 * 1 + 1, consume: + 1
    produce = step_of(sched.inspect(run_id), "produce")["id"]

    result = sched.cli("runs", "rerun", "--no-wait", produce)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{produce}:2"
    outcome = sched.wait_outcome(f"{produce}:2")
    assert outcome["status"] == "value" and outcome["value"] == {"v": 201}  # really ran again

    # The rest of the run is as it was: one attempt of the workflow and of `consume`, run once.
    assert lines(log, "pipeline") == ["pipeline"] and lines(log, "consume") == ["consume 101"]
    run = sched.inspect(run_id)
    assert [len(s["executions"]) for s in run["steps"]] == [1, 2, 1]
    # The workflow read the old result of `produce`: stale. The others are not.
    assert {s["target"]: s["stale"] for s in run["steps"]} == {"pipeline": True, "produce": False, "consume": False}
    inspected = sched.cli("runs", "inspect", "--no-wait", run_id, "-o", "json")
    assert {s["target"]: s["stale"] for s in json.loads(inspected.stdout)["steps"]}["pipeline"] is True
    text = sched.cli("runs", "inspect", "--no-wait", run_id).stdout
    assert "[stale: a step it used was re-run]" in text.splitlines()[1]


def test_rerun_ignores_the_cache_and_later_hits_use_the_new_result(sched, tmp_path):
    log = tmp_path / "log"
    first_id, _ = sched.run(MODULE, "pipeline", str(log), 2)
    second_id, value = sched.run(MODULE, "pipeline", str(log), 2)
    assert value == 103 and lines(log, "produce") == ["produce 2"]  # the second run was a cache hit
    hit = step_of(sched.inspect(second_id), "produce")
    assert [e["result"]["kind"] for e in hit["executions"]] == ["cached"]

    outcome = sched.wait_outcome(sched.client().rerun(hit["id"]))
    assert outcome["value"] == {"v": 202}
    assert lines(log, "produce") == ["produce 2", "produce 2"]
    assert [e["result"]["kind"] for e in step_of(sched.inspect(second_id), "produce")["executions"]] == \
        ["cached", "value"]
    # A new run hits the newest value.
    assert sched.run(MODULE, "pipeline", str(log), 2)[1] == 203
    assert len(lines(log, "produce")) == 2


def test_rerun_of_a_cached_step_marks_its_consumer_stale(sched, tmp_path):
    """The consumer read the old chain (a hit on another run's execution): it is stale too."""
    log = tmp_path / "log"
    sched.run(MODULE, "pipeline", str(log), 3)
    second_id, _ = sched.run(MODULE, "pipeline", str(log), 3)
    sched.wait_outcome(sched.client().rerun(step_of(sched.inspect(second_id), "produce")["id"]))
    assert step_of(sched.inspect(second_id), "pipeline")["stale"] is True


def test_rerun_of_a_running_step_cancels_the_active_attempt(sched, tmp_path):
    log, gate = tmp_path / "log", tmp_path / "gate"
    run = sched.submit(MODULE, "blocked", str(log), str(gate))
    wait_lines(log, 1, "blocker")
    old_pid = int(lines(log, "blocker")[0].split()[1])

    status, body = sched.post(f"api/steps/{run.id}:2/rerun")
    assert status == 201 and body == {"execution": f"{run.id}:2:2", "step": f"{run.id}:2"}
    wait_until(lambda: process_gone(old_pid), 5, message="the old attempt's process to be killed")
    wait_lines(log, 2, "blocker")
    gate.touch()
    # The waiting workflow followed the cancelled attempt to the new one.
    assert run.result(timeout=30) == 2
    snapshot = sched.inspect(run.id)
    old, new = step_of(snapshot, "blocker")["executions"]
    assert old["result"]["kind"] == "cancelled" and old["result"]["successor"] == new["id"]
    assert new["result"]["kind"] == "value"
    assert len(snapshot["steps"][0]["executions"]) == 1 and lines(log, "blocked") == ["blocked"]
    assert snapshot["steps"][0]["stale"] is False  # it got the new attempt's result


def test_rerun_ignores_memo(sched, tmp_path):
    log = tmp_path / "log"
    run_id, value = sched.run(MODULE, "memo_twice", str(log))
    assert value == [1, 1] and len(lines(log)) == 1
    step = step_of(sched.inspect(run_id), "memoised")
    assert sched.wait_outcome(sched.client().rerun(step["id"]))["value"] == {"v": 2}
    assert len(lines(log)) == 2
    assert len(executions(sched.inspect(run_id), "memoised")) == 2


def test_rerun_of_an_unknown_step(sched):
    result = sched.cli("runs", "rerun", "Rnope:2")
    assert result.returncode != 0 and "no step 'Rnope:2'" in result.stderr
    bad = sched.cli("runs", "rerun", "Rnope")
    assert bad.returncode != 0 and "a step is RUN:STEP" in bad.stderr


def test_a_rerun_gets_its_retries_again(sched, tmp_path):
    """Retry k counts the step's consecutive failures since the re-run, not those before it."""
    log = tmp_path / "log"
    run = sched.submit(MODULE, "failing", str(log))
    with pytest.raises(ValueError, match="failure 2"):
        run.result(timeout=30)
    step = step_of(sched.inspect(run.id), "always_fails")["id"]
    assert sched.wait_outcome(sched.client().rerun(step))["error"]["message"] == "failure 4"
    assert [e["result"]["kind"] for e in step_of(sched.inspect(run.id), "always_fails")["executions"]] == \
        ["error"] * 4


def test_rerun_of_a_finished_spawned_step_starts_a_fresh_child_run(sched, tmp_path):
    log, gate = tmp_path / "log", tmp_path / "gate"
    gate.touch()
    run_id, value = sched.run(MODULE, "spawns", str(log), str(gate))
    assert value == 1
    step = step_of(sched.inspect(run_id), "child_flow")
    new = sched.client().rerun(step["id"])
    outcome = sched.wait_outcome(new)
    assert outcome["status"] == "value" and outcome["value"] == {"v": 2}
    run = sched.inspect(run_id)
    first, second = step_of(run, "child_flow")["executions"]
    assert first["result"]["kind"] == second["result"]["kind"] == "spawned"
    assert first["result"]["successor"] != second["result"]["successor"]
    assert len(run["child_runs"]) == 2 and len(run["steps"][0]["executions"]) == 1
    assert len(lines(log)) == 2


def test_rerun_of_a_running_spawned_step_cancels_the_old_child_run(sched, tmp_path):
    log, gate = tmp_path / "log", tmp_path / "gate"
    run = sched.submit(MODULE, "spawns", str(log), str(gate))
    wait_lines(log, 1)
    old_pid = int(lines(log)[0].split()[1])
    step = step_of(sched.inspect(run.id), "child_flow")
    old_child = step["executions"][0]["result"]["successor"]
    sched.client().rerun(step["id"])
    wait_lines(log, 2)
    assert sched.wait_outcome(old_child, timeout=5)["status"] == "cancelled"
    wait_until(lambda: process_gone(old_pid), 5, message="the old child run's process to be killed")
    gate.touch()
    assert run.result(timeout=30) == 2  # the parent got the new child run's result
