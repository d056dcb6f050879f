"""wait (design.md section 3): True, a name, or names. The execution does not start until the
execution handles in those arguments (searched recursively, also inside resolved values) are
resolved; an error counts as resolved (the callee raises when it reads it)."""

from __future__ import annotations

import time

import pytest

from .sched_helpers import executions, lines, steps_of, wait_lines, wait_snapshot

MODULE = "waiting"


def consumer(run: dict, target: str) -> dict | None:
    found = executions(run, target)
    return found[0] if found else None


def input_ids(run: dict) -> dict[str, str]:
    """gated step label -> its execution id."""
    return {step["arguments"][1]["v"]: step["executions"][0]["id"] for step in steps_of(run, "gated")}


@pytest.mark.parametrize("target", ["wait_all", "wait_names"])
def test_waits_for_every_named_argument(sched, tmp_path, target):
    log, gate_a, gate_b = tmp_path / "log", tmp_path / "a", tmp_path / "b"
    run = sched.submit(MODULE, "two_inputs", str(log), target, str(gate_a), str(gate_b))
    wait_lines(log, 2, "start")
    snapshot = wait_snapshot(sched, run.id, lambda r: consumer(r, target) is not None, message="the consumer step")
    ids = input_ids(snapshot)
    waiting = consumer(sched.inspect(run.id), target)
    assert waiting["assigned_at"] is None
    assert waiting["waiting"].startswith("waiting for ") and ids["a"] in waiting["waiting"]

    gate_a.touch()
    wait_lines(log, 1, "end a")
    time.sleep(0.3)
    still = consumer(sched.inspect(run.id), target)
    assert still["assigned_at"] is None and lines(log, "consumer") == []
    assert still["waiting"] == f"waiting for {ids['b']}"

    gate_b.touch()
    assert run.result(timeout=30) == ["a", "b"]
    final = sched.inspect(run.id)
    b_done = next(e for e in executions(final, "gated") if e["id"] == ids["b"])["result"]["at"]
    assert consumer(final, target)["started_at"] >= b_done


def test_waits_for_the_named_argument_only(sched, tmp_path):
    log, gate_a, gate_b = tmp_path / "log", tmp_path / "a", tmp_path / "b"
    run = sched.submit(MODULE, "two_inputs", str(log), "wait_a", str(gate_a), str(gate_b))
    wait_lines(log, 2, "start")
    time.sleep(0.2)
    assert lines(log, "consumer") == []
    gate_a.touch()
    # `b` is still running when the consumer starts and returns.
    assert run.result(timeout=30) == {"a": "a", "b": "not ready"}
    assert lines(log, "end") == ["end a"]
    gate_b.touch()


def test_without_wait_the_consumer_starts_at_once(sched, tmp_path):
    log, gate_a, gate_b = tmp_path / "log", tmp_path / "a", tmp_path / "b"
    run = sched.submit(MODULE, "two_inputs", str(log), "wait_none", str(gate_a), str(gate_b))
    wait_lines(log, 1, "consumer")
    assert lines(log, "end") == []
    gate_a.touch()
    gate_b.touch()
    assert run.result(timeout=30) == ["a", "b"]


def test_handles_inside_a_resolved_value_are_waited_for(sched, tmp_path):
    log, gate = tmp_path / "log", tmp_path / "gate"
    run = sched.submit(MODULE, "nested", str(log), str(gate))
    wait_lines(log, 1, "start inner")
    snapshot = wait_snapshot(
        sched, run.id, lambda r: (c := consumer(r, "wait_nested")) is not None and "waiting" in c
        and executions(r, "wrap")[0]["result"] is not None, message="the outer value to resolve")
    inner = input_ids(snapshot)["inner"]
    # `wrap` has returned its value; the handle inside it is what the consumer now waits for.
    assert executions(snapshot, "wrap")[0]["result"]["kind"] == "value"
    assert consumer(snapshot, "wait_nested")["waiting"] == f"waiting for {inner}"
    time.sleep(0.2)
    assert lines(log, "consumer") == []
    gate.touch()
    assert run.result(timeout=30) == "inner"
    final = sched.inspect(run.id)
    inner_done = executions(final, "gated")[0]["result"]["at"]
    assert consumer(final, "wait_nested")["started_at"] >= inner_done


def test_an_error_counts_as_resolved(sched, tmp_path):
    log, gate = tmp_path / "log", tmp_path / "gate"
    run = sched.submit(MODULE, "error_input", str(log), str(gate))
    wait_lines(log, 1, "start a")
    time.sleep(0.2)
    assert lines(log, "consumer") == []
    gate.touch()
    assert run.result(timeout=30) == "caught a failed"


def test_handles_inside_a_list_argument_are_waited_for(sched, tmp_path):
    log, gate_a, gate_b = tmp_path / "log", tmp_path / "a", tmp_path / "b"
    run = sched.submit(MODULE, "listed", str(log), str(gate_a), str(gate_b))
    wait_lines(log, 2, "start")
    gate_a.touch()
    wait_lines(log, 1, "end a")
    time.sleep(0.2)
    assert lines(log, "consumer") == []
    gate_b.touch()
    assert run.result(timeout=30) == ["a", "b"]
    final = sched.inspect(run.id)
    assert consumer(final, "wait_list")["started_at"] >= max(e["result"]["at"] for e in executions(final, "gated"))
