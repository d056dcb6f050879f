"""`coflux runs inspect` (text and `-o json`) shows, for every execution, its attempts, its result kind,
the successor it points to, and its timing."""

from __future__ import annotations

import json
import re

import pytest

from .sched_helpers import FakeWorker, lines

MODULE = "showcase"


@pytest.fixture(scope="module")
def showcase(sched, tmp_path_factory) -> tuple[str, dict, str]:
    log = tmp_path_factory.mktemp("showcase") / "log"
    run_id, value = sched.run(MODULE, "showcase", str(log))
    assert value == {
        "value": 1, "error": "broken on purpose", "cached": ["cached value"] * 2,
        "memoised": ["memo value"] * 2, "deferred": ["deferred value"] * 2, "spawned": 42,
        "suspended": "resumed", "recurred": "recurred enough", "timeout": True, "cancelled": True}
    assert sorted(lines(log)) == ["cached", "deferred", "memoised", "recurs", "recurs", "suspends", "suspends"]
    text = sched.cli("runs", "inspect", "--no-wait", run_id)
    assert text.returncode == 0, text.stderr
    as_json = sched.cli("runs", "inspect", "--no-wait", run_id, "-o", "json")
    assert as_json.returncode == 0, as_json.stderr
    return run_id, json.loads(as_json.stdout), text.stdout


def by_target(run: dict) -> dict[str, dict]:
    """target -> its step (the first one, for targets called twice)."""
    steps: dict[str, dict] = {}
    for step in run["steps"]:
        steps.setdefault(step["target"], step)
    return steps


def test_every_execution_has_its_attempts_result_and_successor(showcase):
    run_id, run, _ = showcase
    steps = by_target(run)
    # One step per call except the memoised one (memo creates no step).
    assert [s["target"] for s in run["steps"]] == [
        "showcase", "value", "broken", "cached", "cached", "memoised", "deferred", "deferred", "child_flow",
        "suspends", "recurs", "too_slow", "hangs"]

    def results(step: dict) -> list[tuple]:
        return [(e["attempt"], e["result"]["kind"], e["result"]["successor"]) for e in step["executions"]]

    cached = [s for s in run["steps"] if s["target"] == "cached"]
    deferred = [s for s in run["steps"] if s["target"] == "deferred"]
    (child_run,) = run["child_runs"]
    suspends, recurs = steps["suspends"]["id"], steps["recurs"]["id"]
    assert results(steps["value"]) == [(1, "value", None)]
    assert results(steps["broken"]) == [(1, "error", None)]
    assert steps["broken"]["executions"][0]["result"]["error"]["type"] == "builtins.ValueError"
    assert results(cached[0]) == [(1, "value", None)]
    assert results(cached[1]) == [(1, "cached", cached[0]["executions"][0]["id"])]
    assert results(deferred[0]) == [(1, "deferred", deferred[1]["executions"][0]["id"])]
    assert results(steps["child_flow"]) == [(1, "spawned", f"{child_run['id']}:1:1")]
    assert results(steps["suspends"]) == [(1, "suspended", f"{suspends}:2"), (2, "value", None)]
    assert results(steps["recurs"]) == [(1, "recurred", f"{recurs}:2"), (2, "value", None)]
    assert results(steps["too_slow"]) == [(1, "timeout", None)]
    assert results(steps["hangs"]) == [(1, "cancelled", None)]
    assert results(steps["showcase"]) == [(1, "value", None)]
    assert child_run["parent"] == steps["showcase"]["executions"][0]["id"]  # the caller
    assert [(c["parent"], c["child"]) for c in run["children"] if c["memo"]] == \
        [(steps["showcase"]["executions"][0]["id"], steps["memoised"]["executions"][0]["id"])]


def test_every_execution_has_its_timing(showcase):
    _, run, _ = showcase
    steps = by_target(run)
    for step in run["steps"]:
        for e in step["executions"]:
            assert e["created_at"] <= e["result"]["at"], e
            if e["assigned_at"] is not None:
                assert e["created_at"] <= e["assigned_at"] <= e["result"]["at"]
            if e["started_at"] is not None:
                assert e["assigned_at"] <= e["started_at"] <= e["result"]["at"]
    # Executions that never ran have neither, those that ran have both (the killed one has no start).
    assert steps["deferred"]["executions"][0]["assigned_at"] is None
    for step in run["steps"]:
        if step["target"] == "cached" and step["executions"][0]["result"]["kind"] == "cached":
            assert step["executions"][0]["assigned_at"] is None
    assert steps["value"]["executions"][0]["started_at"] is not None
    timeout = steps["too_slow"]["executions"][0]
    assert timeout["assigned_at"] is not None and 0.3 - 0.02 <= timeout["result"]["at"] - timeout["assigned_at"] < 3
    # Delays show as execute_after: the deferred step's 0.2 s, the suspension's 0.1 s.
    kept = [s for s in run["steps"] if s["target"] == "deferred"][1]["executions"][0]
    assert abs(kept["execute_after"] - kept["created_at"] - 0.2) < 0.01
    resumed = steps["suspends"]["executions"][1]
    assert 0.1 - 0.01 <= resumed["execute_after"] - steps["suspends"]["executions"][0]["started_at"] < 1


def test_text_output(showcase):
    run_id, run, text = showcase
    steps = by_target(run)
    first = text.splitlines()[0]
    assert first.startswith(f"run {run_id}  schedapps.showcase/showcase  workspace default  created ")

    def line_of(execution_id: str) -> str:
        (line,) = [line for line in text.splitlines() if line.strip().startswith(execution_id + " ")]
        return line.strip()

    def check(execution_id: str, pattern: str) -> None:
        assert re.fullmatch(re.escape(execution_id) + r"  " + pattern, line_of(execution_id)), line_of(execution_id)

    ran = r"  ran \d+\.\d ms"
    after = r"  after \d+\.\d ms"
    (child_run,) = run["child_runs"]
    cached = [s for s in run["steps"] if s["target"] == "cached"]
    deferred = [s for s in run["steps"] if s["target"] == "deferred"]
    s, r = steps["suspends"]["id"], steps["recurs"]["id"]
    check(steps["value"]["id"] + ":1", r"attempt 1  value 1" + ran)
    check(steps["broken"]["id"] + ":1", r"attempt 1  error builtins\.ValueError: broken on purpose" + ran)
    check(cached[1]["id"] + ":1", rf"attempt 1  cached -> {cached[0]['id']}:1" + after)
    check(deferred[0]["id"] + ":1", rf"attempt 1  deferred -> {deferred[1]['id']}:1" + after)
    check(steps["child_flow"]["id"] + ":1", rf"attempt 1  spawned -> {child_run['id']}:1:1" + after)
    check(f"{s}:1", rf"attempt 1  suspended -> {s}:2" + ran)
    check(f"{s}:2", r'attempt 2  value "resumed"' + ran)
    check(f"{r}:1", rf"attempt 1  recurred -> {r}:2" + ran)
    check(steps["too_slow"]["id"] + ":1", r"attempt 1  timeout" + ran)  # the worker reports when it began
    check(steps["hangs"]["id"] + ":1", r"attempt 1  cancelled by super token" + ran)  # started (its worker said so); who cancelled
    assert f"  child run {child_run['id']} (schedapps.showcase/child_flow) from {child_run['parent']}" in text
    # The second `memoised(log)` made no step: a memo link to the first one's execution.
    assert f"  memoised: {steps['showcase']['id']}:1 reused {steps['memoised']['id']}:1" in text
    for step in run["steps"]:
        assert f"  step {step['id']}  {step['module']}/{step['target']} ({step['type']})" in text


def test_an_abandoned_execution(sched):
    """A worker that re-registers its session without an execution it said it started abandons it."""
    fake = FakeWorker(sched, "schedapps_ghost", "ghost")
    try:
        run = sched.client().submit("schedapps_ghost", "ghost")
        fake.wait_received(1)
        fake.reregister_without_running()
        outcome = sched.wait_outcome(f"{run.id}:1:1")
        assert outcome["status"] == "abandoned"
        text = sched.cli("runs", "inspect", "--no-wait", run.id).stdout
        assert re.search(rf"{run.id}:1:1  attempt 1  abandoned  (ran|after) \d+\.\d ms", text), text
        (execution,) = sched.inspect(run.id)["steps"][0]["executions"]
        assert execution["result"]["kind"] == "abandoned" and execution["session"] == fake.session
    finally:
        fake.close()
