"""memo (design.md section 3): within one run, a call equal to a pending or successful one returns
that execution without creating a step (the run records a memo link); failed ones are not reused."""

from __future__ import annotations

from .sched_helpers import executions, kinds, lines, steps_of

MODULE = "memo"


def memo_links(run: dict) -> list[tuple[str, str]]:
    return [(c["parent"], c["child"]) for c in run["children"] if c["memo"]]


def test_equal_calls_return_the_same_execution_without_a_step(sched, tmp_path):
    log = tmp_path / "log"
    run_id, value = sched.run(MODULE, "same_calls", str(log))
    a, b, c = value["ids"]
    assert a == b != c
    assert value["values"] == [10, 10, 20, 10]
    assert sorted(lines(log)) == ["memo_all 1", "memo_all 2"]  # two executions, not four

    run = sched.inspect(run_id)
    assert [e["id"] for e in executions(run, "memo_all")] == [a, c]  # two steps, not four

    # Memo does not reach across runs: a second run executes its own.
    sched.run(MODULE, "same_calls", str(log))
    assert len(lines(log)) == 4


def test_a_memo_hit_from_another_parent_is_shown_as_memoised(sched, tmp_path):
    log = tmp_path / "log"
    run_id, value = sched.run(MODULE, "across_parents", str(log))
    assert value == [50, 50] and lines(log) == ["memo_all 5"]
    run = sched.inspect(run_id)
    (original,) = executions(run, "memo_all")
    (caller,) = executions(run, "calls_memo_all")
    assert memo_links(run) == [(caller["id"], original["id"])]
    text = sched.cli("runs", "inspect", "--no-wait", run_id)
    assert text.returncode == 0, text.stderr
    assert f"memoised: {caller['id']} reused {original['id']}" in text.stdout


def test_a_memo_hit_from_the_same_parent_is_shown_as_memoised(sched, tmp_path):
    """The common case: a workflow making the same memoised call twice."""
    log = tmp_path / "log"
    run_id, value = sched.run(MODULE, "same_calls", str(log))
    a = value["ids"][0]
    run = sched.inspect(run_id)
    workflow = run["steps"][0]["executions"][0]["id"]
    text = sched.cli("runs", "inspect", "--no-wait", run_id)
    assert f"memoised: {workflow} reused {a}" in text.stdout
    assert (workflow, a) in memo_links(run)


def test_memo_on_named_parameters(sched, tmp_path):
    log = tmp_path / "log"
    run_id, value = sched.run(MODULE, "by_user", str(log))
    first, second, other = value["ids"]
    assert first == second != other
    assert value["values"] == ["u1:first", "u1:first", "u2:first"]
    assert sorted(lines(log)) == ["profile u1 first", "profile u2 first"]
    assert len(steps_of(sched.inspect(run_id), "profile")) == 2


def test_workflow_memo_true_memoises_every_call_and_memo_false_opts_out(sched, tmp_path):
    log = tmp_path / "log"
    run_id, value = sched.run(MODULE, "memo_everything", str(log))
    assert value == [1, 1, 2, 1, 1]
    assert sorted(lines(log)) == ["opt_out 1", "opt_out 1", "plain 1", "plain 2"]
    run = sched.inspect(run_id)
    assert run["memo"] is True
    assert len(steps_of(run, "plain")) == 2 and len(steps_of(run, "opt_out")) == 2
    assert memo_links(run) == [(run["steps"][0]["executions"][0]["id"], executions(run, "plain")[0]["id"])]


def test_a_failed_execution_is_not_reused(sched, tmp_path):
    log = tmp_path / "log"
    run_id, value = sched.run(MODULE, "failures", str(log))
    assert value == ["memo failure 1", "memo failure 2"]
    assert len(lines(log)) == 2
    run = sched.inspect(run_id)
    assert kinds(run, "memo_fails") == ["error", "error"]
    assert memo_links(run) == []
