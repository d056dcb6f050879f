"""suspend / suspense / poll (design.md section 3). `cf.suspend(delay)` ends the execution as
`suspended` and schedules a new attempt after the delay (seconds, timedelta or datetime); `finally`
runs, `except Exception` cannot swallow it, and the worker slot is free meanwhile. Inside
`cf.suspense(t)`, a `.result()` not ready within t suspends; the new attempt starts once what it
waited on is resolved, from the top, with memoised children returning at once. `poll` never
suspends."""

from __future__ import annotations

import pytest

from .sched_helpers import executions, lines, wait_snapshot

MODULE = "suspending"


@pytest.mark.parametrize("how", ["seconds", "timedelta", "datetime"])
def test_suspend_starts_a_new_attempt_after_the_delay(sched, tmp_path, how):
    log = tmp_path / "log"
    run_id, value = sched.run(MODULE, "nap", str(log), how, 0.5)
    assert value == 2
    # `finally` ran; `except Exception` did not catch the suspension.
    assert lines(log) == ["attempt", "finally", "attempt"]
    first, second = sched.inspect(run_id)["steps"][0]["executions"]
    assert first["result"]["kind"] == "suspended" and first["result"]["successor"] == second["id"]
    assert second["attempt"] == 2 and second["result"]["kind"] == "value"
    asked = second["execute_after"] - first["started_at"]
    assert 0.5 - 0.01 <= asked < 0.5 + 0.5, asked  # the delay counts from the suspend call
    assert second["assigned_at"] >= second["execute_after"]
    assert second["started_at"] - second["execute_after"] < 1.0


def test_a_suspended_task_is_followed_by_its_caller(sched, tmp_path):
    log = tmp_path / "log"
    run_id, value = sched.run(MODULE, "calls_napping_task", str(log))
    assert value == "rested"
    assert [e["result"]["kind"] for e in executions(sched.inspect(run_id), "naps_in_a_task")] == \
        ["suspended", "value"]


def test_suspense_resumes_when_the_awaited_execution_resolves_and_memo_runs_children_once(sched, tmp_path):
    log = tmp_path / "log"
    run_id, value = sched.run(MODULE, "resumable", str(log))
    assert value == [1, "slow done", 2]
    # Two attempts of the workflow; each child ran once (the second attempt's calls were memo hits).
    assert sorted(lines(log)) == ["attempt", "attempt", "fast 1", "slow"]
    run = sched.inspect(run_id)
    first, second = run["steps"][0]["executions"]
    assert first["result"]["kind"] == "suspended" and first["result"]["successor"] == second["id"]
    suspended_after = first["result"]["at"] - first["started_at"]
    assert 0.2 - 0.02 <= suspended_after < 0.2 + 1.0, suspended_after
    (slow,) = executions(run, "slow")
    assert second["execute_after"] is None
    assert second["started_at"] >= slow["result"]["at"]  # not before what it waited on resolved
    assert second["assigned_at"] - slow["result"]["at"] < 1.0
    # The resumed attempt's calls are recorded as memo links to the first attempt's children.
    memo = {(c["parent"], c["child"]) for c in run["children"] if c["memo"]}
    assert memo == {(second["id"], executions(run, "fast")[0]["id"]), (second["id"], slow["id"])}


def test_poll_never_suspends(sched, tmp_path):
    log = tmp_path / "log"
    run_id, value = sched.run(MODULE, "polls", str(log))
    assert value == ["not yet", "still not", 7, "slow done", 1]
    assert len(sched.inspect(run_id)["steps"][0]["executions"]) == 1
    assert lines(log, "attempt") == ["attempt"]


def test_suspend_frees_the_worker_slot(sched, one_slot, tmp_path):
    log = tmp_path / "log"
    sleeper = sched.submit("oneslot", "sleeper", str(log), 1.5)
    wait_snapshot(sched, sleeper.id, lambda r: r["steps"][0]["executions"][0]["result"] is not None,
                  message="the sleeper to suspend")
    # The only slot is free: another run goes through while the sleeper waits for its time.
    quick_id, quick = sched.run("oneslot", "quick", str(log))
    assert quick == "quick"
    assert sleeper.result(timeout=30) == "rested"
    first, second = sched.inspect(sleeper.id)["steps"][0]["executions"]
    quick_done = sched.inspect(quick_id)["steps"][0]["executions"][0]["result"]["at"]
    assert first["result"]["at"] < quick_done < second["execute_after"] <= second["started_at"]


def test_suspense_frees_the_slot_for_the_awaited_child(sched, one_slot, tmp_path):
    """With one slot, a workflow waiting for its child could never see it run; in suspense it
    suspends, the child runs, and the resumed (memoised) workflow reads the result."""
    log = tmp_path / "log"
    run_id, value = sched.run("oneslot", "waits_in_suspense", str(log))
    assert value == ["child done", 2, 1]
    run = sched.inspect(run_id)
    assert [e["result"]["kind"] for e in run["steps"][0]["executions"]] == ["suspended", "value"]
    assert [e["result"]["kind"] for e in executions(run, "child")] == ["value"]


def test_wrong_delays_are_clear_errors(sched):
    run_id, value = sched.run(MODULE, "bad_suspends")
    assert value == [
        "TypeError: suspend delay must be a number of seconds or a timedelta, not 'soon'",
        "ValueError: suspend delay must not be negative, got -1",
        "TypeError: suspend delay must be a number of seconds or a timedelta, not True"]
    assert len(sched.inspect(run_id)["steps"][0]["executions"]) == 1


def test_suspend_and_suspense_outside_coflux():
    import coflux as cf

    with pytest.raises(RuntimeError, match=r"cf.suspend\(\) can only be called inside a running workflow or task"):
        cf.suspend(1)
    with pytest.raises(ValueError, match="suspense timeout must not be negative"):
        with cf.suspense(-1):
            pass
    with pytest.raises(TypeError, match="suspense timeout must be a number of seconds or a timedelta"):
        with cf.suspense("1s"):
            pass
