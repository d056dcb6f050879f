"""cache (design.md section 3): a hit is another step's execution with the same key whose result is
a value within max age or is still pending; errors never hit; the hit resolves as `cached` and
never runs. (Workspaces: test_workspaces.py; re-running a cached step: test_rerun.py.)"""

from __future__ import annotations

import json
import time

import pytest

import coflux as cf

from .sched_helpers import executions, kinds, lines, wait_lines, wait_snapshot

MODULE = "cache"


def call(sched, name: str, *args):
    return sched.run(MODULE, "call", name, list(args))


def test_cache_true_hits_across_runs_and_within_a_run(sched, tmp_path):
    log = str(tmp_path / "log")
    first_id, first = call(sched, "forever", log, 1)
    second_id, second = call(sched, "forever", log, 1)
    assert first == second == {"x": 1, "run": 1}
    assert len(lines(tmp_path / "log")) == 1  # the second run did not execute the task

    (original,) = executions(sched.inspect(first_id), "forever")
    (hit,) = executions(sched.inspect(second_id), "forever")
    assert original["result"]["kind"] == "value"
    assert hit["result"]["kind"] == "cached" and hit["result"]["successor"] == original["id"]
    assert hit["assigned_at"] is None and hit["started_at"] is None  # never ran anywhere

    # Other arguments are another key.
    assert call(sched, "forever", log, 2)[1] == {"x": 2, "run": 2}
    # Two steps of one run with equal arguments: the second is a hit on the first.
    run_id, value = sched.run(MODULE, "twice", log, 3)
    assert value == [{"x": 3, "run": 3}, {"x": 3, "run": 3}]
    run = sched.inspect(run_id)
    assert kinds(run, "forever") == ["value", "cached"]
    assert executions(run, "forever")[1]["result"]["successor"] == executions(run, "forever")[0]["id"]
    assert len(lines(tmp_path / "log")) == 3


def test_max_age_in_seconds_and_as_timedelta(sched, tmp_path):
    log = str(tmp_path / "log")
    # cache=30 (seconds): a second run soon after is a hit.
    assert call(sched, "thirty_seconds", log, 1)[1] == call(sched, "thirty_seconds", log, 1)[1]
    assert len(lines(tmp_path / "log", "thirty")) == 1

    # cache=timedelta(seconds=1.5): a hit within the max age, a miss after it.
    first_id, first = call(sched, "brief", log, 1)
    _, again = call(sched, "brief", log, 1)
    assert again == first and len(lines(tmp_path / "log", "brief")) == 1
    (original,) = executions(sched.inspect(first_id), "brief")
    time.sleep(max(0.0, original["result"]["at"] + 1.6 - time.time()))
    expired_id, expired = call(sched, "brief", log, 1)
    assert expired != first and len(lines(tmp_path / "log", "brief")) == 2
    assert kinds(sched.inspect(expired_id), "brief") == ["value"]


def test_params_namespace_and_version(sched, tmp_path):
    log = str(tmp_path / "log")
    key = tmp_path.name  # unique to this test: `noise` is not part of the key
    _, first = call(sched, "keyed", log, key, 1)
    assert first == {"by": "keyed", "noise": 1, "run": 1}
    # Only `key` is selected: a different `noise` is a hit.
    assert call(sched, "keyed", log, key, 2)[1] == first
    # Another target with the same namespace and version shares the entry.
    twin_id, twin = call(sched, "keyed_twin", log, key, 3)
    assert twin == first and kinds(sched.inspect(twin_id), "keyed_twin") == ["cached"]
    assert len(lines(tmp_path / "log")) == 1
    # A changed version misses; so does another namespace.
    assert call(sched, "keyed_v2", log, key, 4)[1] == {"by": "keyed", "noise": 4, "run": 2}
    assert call(sched, "keyed_other_namespace", log, key, 5)[1] == {"by": "keyed", "noise": 5, "run": 3}
    # ... and each of them is then a key of its own that hits.
    assert call(sched, "keyed_v2", log, key, 6)[1]["noise"] == 4
    assert call(sched, "keyed_other_namespace", log, key, 7)[1]["noise"] == 5
    assert len(lines(tmp_path / "log")) == 3


def test_hit_on_a_running_execution_waits_for_it(sched, tmp_path):
    log, gate = tmp_path / "log", tmp_path / "gate"
    first = sched.submit(MODULE, "call", "gated", [str(log), 1, str(gate)])
    wait_lines(log, 1)
    second = sched.submit(MODULE, "call", "gated", [str(log), 1, str(gate)])
    # The second run's step is linked to the first one's execution while it still runs.
    run = wait_snapshot(sched, second.id, lambda r: kinds(r, "gated") == ["cached"], message="an in-flight hit")
    (original,) = executions(sched.inspect(first.id), "gated")
    assert original["result"] is None
    assert executions(run, "gated")[0]["result"]["successor"] == original["id"]
    assert second.poll(0.2, default="waiting") == "waiting"
    gate.touch()
    assert first.result(timeout=30) == second.result(timeout=30) == {"x": 1, "run": 1}
    assert len(lines(log)) == 1


def test_hit_on_a_running_execution_fails_if_it_fails(sched, tmp_path):
    log, gate = tmp_path / "log", tmp_path / "gate"
    first = sched.submit(MODULE, "call", "gated_failure", [str(log), 1, str(gate)])
    wait_lines(log, 1)
    second = sched.submit(MODULE, "call", "gated_failure", [str(log), 1, str(gate)])
    wait_snapshot(sched, second.id, lambda r: kinds(r, "gated_failure") == ["cached"], message="an in-flight hit")
    gate.touch()
    for run in (first, second):
        with pytest.raises(ValueError, match="gated failure 1"):
            run.result(timeout=30)
    assert len(lines(log)) == 1
    # The failure is not cached: the next run executes again.
    third = sched.submit(MODULE, "call", "gated_failure", [str(log), 1, str(gate)])
    with pytest.raises(ValueError, match="gated failure 1"):
        third.result(timeout=30)
    assert len(lines(log)) == 2
    assert kinds(sched.inspect(third.id), "gated_failure") == ["error"]


def test_errors_are_never_cached(sched, tmp_path):
    log = str(tmp_path / "log")
    for expected in (1, 2, 3):
        with pytest.raises(ValueError, match="failure 1"):
            call(sched, "fails", log, 1)
        assert len(lines(tmp_path / "log")) == expected


def test_keyword_and_positional_calls_share_a_key(sched, tmp_path):
    log = tmp_path / "log"
    run_id, value = sched.run(MODULE, "by_keyword", str(log), 4)
    assert value == [{"x": 4, "run": 1}] * 3
    assert len(lines(log)) == 1
    assert kinds(sched.inspect(run_id), "forever") == ["value", "cached", "cached"]


def test_a_cached_workflow(sched, tmp_path):
    log = tmp_path / "log"
    first_id, first = sched.run(MODULE, "cached_flow", str(log), 1)
    second_id, second = sched.run(MODULE, "cached_flow", str(log), 1)
    assert first == second == {"x": 1, "run": 1} and len(lines(log)) == 1
    (hit,) = sched.inspect(second_id)["steps"][0]["executions"]
    assert hit["result"]["kind"] == "cached" and hit["result"]["successor"] == f"{first_id}:1:1"
    # The command line follows the hit to the value too.
    result = sched.cli("runs", "result", second_id)
    assert result.returncode == 0 and json.loads(result.stdout) == {"x": 1, "run": 1}


def test_cancelling_an_in_flight_hit_leaves_the_original_running(sched, tmp_path):
    """Cancelling a run cancels its own executions only, not the other run's execution that its
    cached step points at."""
    log, gate = tmp_path / "log", tmp_path / "gate"
    first = sched.submit(MODULE, "call", "gated", [str(log), 7, str(gate)])
    wait_lines(log, 1)
    second = sched.submit(MODULE, "call", "gated", [str(log), 7, str(gate)])
    wait_snapshot(sched, second.id, lambda r: kinds(r, "gated") == ["cached"], message="an in-flight hit")
    sched.client().cancel(second.id)
    with pytest.raises(cf.ExecutionCancelled):
        second.result(timeout=10)
    gate.touch()
    assert first.result(timeout=30) == {"x": 7, "run": 1}


def test_a_step_waiting_for_its_retry_is_an_in_flight_hit(sched, tmp_path):
    """A step in its retry backoff is still pending: an equal call links to it, it does not run."""
    log = tmp_path / "log"
    first = sched.submit(MODULE, "call", "retried", [str(log), 1])
    wait_snapshot(sched, first.id, lambda r: len(executions(r, "retried")) == 2, message="the retry to be scheduled")
    second = sched.submit(MODULE, "call", "retried", [str(log), 1])
    assert first.result(timeout=30) == second.result(timeout=30) == {"x": 1, "run": 2}
    assert len(lines(log)) == 2  # the failed attempt and its retry; the second run linked to it
