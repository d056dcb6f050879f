"""Outside any execution context (a script, a test), targets are plain functions: calling one
runs it directly, `submit` runs it at once and returns a finished handle, and a stub runs its
body. No server is involved (these tests start none)."""

from __future__ import annotations

import pytest
from myapp import workflows as wf

import coflux as cf
from coflux.context import current_context


def test_not_in_a_context():
    assert current_context() is None


def test_decorators_return_targets():
    assert isinstance(wf.process, cf.Target)
    assert (wf.process.kind, wf.fetch_data.kind, wf.random_int.kind) == ("workflow", "task", "task")
    assert wf.process.module == "myapp.workflows" and wf.process.name == "process"
    assert wf.random_int.module == "other.workflows" and wf.random_int.stub
    assert wf.other_whoami.name == "whoami" and wf.other_flow.kind == "workflow"
    assert wf.process.__doc__.strip() == "Fetches data from `url` and processes it."
    assert wf.process.__name__ == "process"


def test_workflow_and_tasks_run_directly():
    assert wf.fetch_data("https://x") == {"url": "https://x", "length": 9}
    assert wf.process("https://x") == "https://x has 9 characters"
    assert wf.nested(1, 2, 3) == 6


def test_task_calling_workflow_runs_directly():
    assert wf.parent(2) == 21


def test_submit_returns_a_finished_execution():
    execution = wf.square.submit(7)
    assert isinstance(execution, cf.Execution)
    assert execution.result() == 49
    assert execution.poll() == 49
    assert (execution.module, execution.target) == ("myapp.workflows", "square")
    execution.cancel()  # nothing to cancel; no error


def test_handles_as_arguments_and_results():
    assert wf.handles(5) == {"total": 30, "plus_one": 17, "poll": 0, "types": ["LocalExecution"]}
    assert wf.returns_execution(4).result() == 16
    assert wf.unwrap(3) == {"is_execution": True, "value": 9}


def test_fan_out():
    assert wf.fan_out() == sum(range(1, 1001))
    assert wf.fan_out(10) == 55


def test_keyword_arguments():
    assert wf.greetings("Ann") == ["Hello, Ann!", "Hi, Ann!", "Hey, Ann?", "Hello, Ann."]
    assert wf.greet(name="Bo", punctuation="?") == "Hello, Bo?"
    with pytest.raises(TypeError):
        wf.bad_call()


def test_stub_runs_its_body():
    assert wf.random_int(6) == 4
    assert wf.random_int.submit(6).result() == 4
    assert wf.roll_die() == "lost"
    assert wf.roll_many(2) == [4, 4, 4, 4]
    assert wf.other_whoami()["module"] == "stub body"
    assert wf.other_flow(5) == -1


def test_errors_are_the_original_exceptions():
    with pytest.raises(ZeroDivisionError):
        wf.divide(1, 0)
    with pytest.raises(wf.PaymentDeclined, match="card declined for 7"):
        wf.uncaught()
    execution = wf.divide.submit(1, 0)  # submit does not raise; result() does
    with pytest.raises(ZeroDivisionError):
        execution.result()


def test_workflow_catching_errors_locally():
    caught = wf.catches()
    # Locally the exceptions are the plain originals, not ExecutionErrors.
    assert caught == {
        "zero": {"execution_error": False, "type": None, "message": "division by zero", "traceback": None},
        "declined": {"execution_error": False, "message": "card declined for 5"},
        "key": {"execution_error": False, "type": None},
        "as_execution_error": None,
    }


def test_group_is_a_no_op_outside_coflux():
    with cf.group("batch"):
        assert wf.square(3) == 9


def test_submit_binds_arguments_locally():
    with pytest.raises(TypeError, match=r"greet\(\)"):
        wf.greet.submit(nickname="x")


def test_local_execution_cannot_be_sent_to_a_server():
    with pytest.raises(TypeError, match="ran locally"):
        wf.square.submit(2).to_ref()
