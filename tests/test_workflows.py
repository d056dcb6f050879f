"""The examples of defining-workflows.txt, run by a real server and real workers (tests/apps/).

Each test submits with `coflux submit` or the Python client and checks what a user would see:
the printed result, and the steps the run recorded (`coflux runs inspect -o json`).
"""

from __future__ import annotations

import json
import os

import pytest
from harness import inspect_run, steps_by_target


def submit(cli, target: str, *args: str) -> tuple[str, object]:
    """`coflux submit --no-wait` then `coflux runs result`: (run id, printed JSON result)."""
    submitted = cli("submit", "--no-wait", f"myapp.workflows/{target}", *args)
    assert submitted.returncode == 0, submitted.stderr
    run_id = submitted.stdout.strip()
    result = cli("runs", "result", run_id)
    assert result.returncode == 0, result.stderr
    return run_id, json.loads(result.stdout)


def test_workflow_calls_tasks(cli):
    result = cli("submit", "myapp.workflows/process", '"https://x"')
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == "https://x has 9 characters"
    run_id = result.stderr.split()[1]  # "run R... submitted"
    run = inspect_run(cli, run_id)
    assert [(s["number"], s["target"], s["type"]) for s in run["steps"]] == [
        (1, "process", "workflow"), (2, "fetch_data", "task"), (3, "describe", "task")]
    assert all(s["parent"] == f"{run_id}:1:1" for s in run["steps"][1:])
    assert run["steps"][1]["executions"][0]["result"]["value"] == {"v": {"url": "https://x", "length": 9}}


def test_workflow_is_registered_with_docstring(server, workers):
    workflows = {(w["module"], w["name"]): w for w in server.get("api/workflows")["workflows"]}
    assert ("myapp.workflows", "process") in workflows
    assert ("myapp.workflows", "fetch_data") not in workflows  # tasks are declared, not registered
    process = workflows[("myapp.workflows", "process")]
    assert process["instruction"] == "Fetches data from `url` and processes it."
    assert [p["name"] for p in process["parameters"]] == ["url"]
    assert ("other.workflows", "other_flow") in workflows


def test_tasks_call_tasks(cli):
    run_id, value = submit(cli, "nested", "1", "2", "3")
    assert value == 6
    run = inspect_run(cli, run_id)
    steps = {s["id"]: s for s in run["steps"]}
    by_target = steps_by_target(run)
    assert len(by_target["add_three"]) == 1 and len(by_target["add"]) == 2
    add_three = by_target["add_three"][0]
    for add in by_target["add"]:
        assert add["parent"] == add_three["executions"][0]["id"]  # called from the task, not the workflow
    assert steps[f"{run_id}:2"]["target"] == "add_three"


def test_task_calls_workflow_as_child_run(cli):
    run_id, value = submit(cli, "parent", "2")
    assert value == 21
    run = inspect_run(cli, run_id)
    start_child = steps_by_target(run)["start_child"][0]
    child_step = steps_by_target(run)["child"][0]
    assert child_step["type"] == "workflow" and child_step["parent"] == start_child["executions"][0]["id"]
    # The call became a separate run, linked to the execution that called it.
    assert len(run["child_runs"]) == 1
    child_run = run["child_runs"][0]
    assert child_run["parent"] == start_child["executions"][0]["id"]
    assert child_run["id"] != run_id
    child = inspect_run(cli, child_run["id"])
    assert (child["module"], child["target"], child["parent"]) == (
        "myapp.workflows", "child", start_child["executions"][0]["id"])
    assert child["steps"][0]["executions"][0]["result"]["value"] == {"v": 20}
    # The step in the parent run hands over to the child run's execution.
    assert child_step["executions"][0]["result"]["successor"] == f"{child_run['id']}:1:1"
    result = cli("runs", "result", child_run["id"])
    assert result.returncode == 0 and json.loads(result.stdout) == 20


def test_submit_handles_as_arguments(cli):
    run_id, value = submit(cli, "handles", "5")
    assert value == {"total": 30, "plus_one": 17, "poll": 0, "types": ["Execution"]}
    run = inspect_run(cli, run_id)
    by_target = steps_by_target(run)
    assert len(by_target["square"]) == 5
    # The handles travelled as references to the square executions.
    total_args = by_target["total"][0]["arguments"][0]
    assert [r["id"] for r in total_args["refs"]] == [s["executions"][0]["id"] for s in by_target["square"]]


def test_workflow_returns_execution(cli, client):
    # The returned handle is followed to its value (issue 7; more in test_clean_failures.py).
    result = cli("submit", "myapp.workflows/returns_execution", "4")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == 16
    run = client.submit("myapp.workflows", "returns_execution", 4)
    assert run.result(timeout=60) == 16
    # What the run recorded is the reference itself.
    ref = run.inspect()["steps"][0]["executions"][0]["result"]["value"]["refs"][0]
    assert (ref["module"], ref["target"]) == ("myapp.workflows", "square")
    assert ref["id"].startswith(run.id + ":")


def test_task_returns_execution(cli):
    _, value = submit(cli, "unwrap", "3")
    assert value == {"is_execution": True, "value": 9}


def test_fan_out_1000(cli):
    run_id, value = submit(cli, "fan_out")  # default n=1000
    assert value == sum(range(1, 1001))
    run = inspect_run(cli, run_id)
    assert len(run["steps"]) == 1001
    incs = steps_by_target(run)["inc"]
    assert len(incs) == 1000
    assert all(len(s["executions"]) == 1 and s["executions"][0]["result"]["kind"] == "value" for s in incs)
    assert sorted(s["executions"][0]["result"]["value"]["v"] for s in incs) == list(range(1, 1001))


def test_keyword_arguments(cli):
    run_id, value = submit(cli, "greetings", '"Ann"')
    assert value == ["Hello, Ann!", "Hi, Ann!", "Hey, Ann?", "Hello, Ann."]
    run = inspect_run(cli, run_id)
    # Arguments are bound to the signature with defaults filled in, in parameter order.
    assert run["steps"][0]["arguments"] == [{"v": "Ann"}, {"v": "Hi"}]
    greet_args = [[a["v"] for a in s["arguments"]] for s in steps_by_target(run)["greet"]]
    assert greet_args == [["Ann", "Hello", "!"], ["Ann", "Hi", "!"], ["Ann", "Hey", "?"], ["Ann", "Hello", "."]]


def test_stub_runs_on_the_worker_hosting_its_module(cli, workers):
    run_id, value = submit(cli, "where_is_other")
    assert value["other"] != value["here"]
    assert value["other_flow"] == 15  # a workflow stub starts a child run on the other worker
    run = inspect_run(cli, run_id)
    sessions = {w: workers[w].session()["id"] for w in ("myapp", "other")}
    by_target = steps_by_target(run)
    assert run["steps"][0]["executions"][0]["session"] == sessions["myapp"]
    whoami = by_target["whoami"][0]
    assert whoami["module"] == "other.workflows"
    assert whoami["executions"][0]["session"] == sessions["other"]
    child = inspect_run(cli, run["child_runs"][0]["id"])
    assert (child["module"], child["target"]) == ("other.workflows", "other_flow")
    assert child["steps"][0]["executions"][0]["session"] == sessions["other"]


def test_roll_die_with_stub(cli):
    result = cli("submit", "myapp.workflows/roll_die")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) in ("won", "lost")
    run_id, values = submit(cli, "roll_many", "5")
    assert len(values) == 10 and all(1 <= v <= 6 for v in values)
    assert values != [4] * 10  # the real task ran, not the stub's dummy body
    run = inspect_run(cli, run_id)
    stub_steps = steps_by_target(run)["random_int"]
    assert len(stub_steps) == 10 and {s["module"] for s in stub_steps} == {"other.workflows"}


def test_errors_surface_as_original_type(cli):
    run_id, caught = submit(cli, "catches")
    zero = caught["zero"]
    assert zero["execution_error"] is True
    assert zero["type"] == "builtins.ZeroDivisionError"
    assert zero["message"] == "division by zero"
    assert "return a / b" in zero["traceback"] and "workflows.py" in zero["traceback"]
    assert zero["traceback"].endswith("ZeroDivisionError: division by zero")
    assert caught["declined"] == {"execution_error": True, "message": "card declined for 5"}
    assert caught["key"] == {"execution_error": True, "type": "builtins.KeyError"}
    assert caught["as_execution_error"] is True
    run = inspect_run(cli, run_id)
    divide = steps_by_target(run)["divide"][0]["executions"][0]["result"]
    assert divide["kind"] == "error" and divide["error"]["type"] == "builtins.ZeroDivisionError"
    assert run["steps"][0]["executions"][0]["result"]["kind"] == "value"  # the workflow handled it


def test_failed_run_exits_nonzero_with_error_on_stderr(cli):
    result = cli("submit", "myapp.workflows/divide_flow", "1", "0")
    assert result.returncode != 0
    assert result.stdout == ""
    assert "builtins.ZeroDivisionError: division by zero" in result.stderr
    assert "Traceback (remote, most recent call last)" in result.stderr
    assert "return divide(a, b)" in result.stderr
    assert "Traceback (most recent call last)" not in result.stderr  # no local traceback of the CLI

    result = cli("submit", "myapp.workflows/uncaught")
    assert result.returncode != 0
    assert "myapp.workflows.PaymentDeclined: card declined for 7" in result.stderr


def test_failed_run_shows_where_the_error_was_raised(cli):
    result = cli("submit", "myapp.workflows/divide_flow", "1", "0")
    assert result.returncode != 0
    assert "return a / b" in result.stderr


def test_wrong_arguments_inside_a_workflow_fail_the_caller(cli):
    result = cli("submit", "myapp.workflows/bad_call")
    assert result.returncode != 0
    assert "TypeError" in result.stderr and "greet()" in result.stderr


def test_pool_of_warm_processes(cli, worker):
    _, calls = submit(cli, "pool_info", "9")
    pids = {c["pid"] for c in calls}
    assert worker.proc.pid not in pids  # executions run in the pool, not in the worker itself
    # 4 slots: the workflow waits parked (its slot given back), so the tasks use the 3 other
    # processes, a 4th started for the free slot, and perhaps the warm spare kept while parked.
    assert len(pids) <= 5
    assert max(c["calls"] for c in calls) >= 2  # processes are reused with the module imported once
    for pid in pids:
        assert os.path.exists(f"/proc/{pid}")  # still alive: warm


@pytest.mark.parametrize("value", [None, True, 0, -2.5, "text", [1, "a", None], {"a": {"b": [1, 2]}}])
def test_json_arguments_round_trip(cli, value):
    _, result = submit(cli, "identity", json.dumps(value))
    assert result == value


def test_group_tags_children(cli):
    result = cli("submit", "myapp.workflows/grouped", "6")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [1, 3, 5, 2, 4, 6, 101]
    run_id = result.stderr.split("run ", 1)[1].split()[0]
    run = json.loads(cli("runs", "inspect", "--no-wait", run_id, "-o", "json").stdout)
    root = run["steps"][0]["executions"][0]["id"]
    names = {g["group"]: g["name"] for g in run["groups"] if g["execution"] == root}
    assert sorted(names.values()) == ["evens", "odds"]
    by_group: dict = {}
    for edge in run["children"]:
        by_group.setdefault(names.get(edge["group"]), []).append(edge["child"])
    assert len(by_group["evens"]) == 3 and len(by_group["odds"]) == 3 and len(by_group[None]) == 1
