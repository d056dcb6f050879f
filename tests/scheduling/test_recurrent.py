"""recurrent (design.md section 3): after a result of exactly None the step runs again after `delay`;
any other value, an error with its retries exhausted, or a cancel stops it."""

from __future__ import annotations

import time

import pytest

import coflux as cf

from .sched_helpers import executions, kinds, lines, no_new_lines, wait_lines

MODULE = "recurring"


def test_recurs_after_none_with_the_delay_between_and_stops_on_a_value(sched, tmp_path):
    log = tmp_path / "log"
    run_id, value = sched.run(MODULE, "call", "until", [str(log), 3])
    assert value == 3
    assert len(lines(log)) == 3
    attempts = executions(sched.inspect(run_id), "until")
    assert [e["result"]["kind"] for e in attempts] == ["recurred", "recurred", "value"]
    assert [e["result"]["successor"] for e in attempts] == [attempts[1]["id"], attempts[2]["id"], None]
    for previous, following in zip(attempts[:-1], attempts[1:], strict=True):
        assert abs(following["execute_after"] - following["created_at"] - 0.3) < 0.01
        gap = following["started_at"] - previous["result"]["at"]
        assert 0.3 - 0.02 <= gap < 1.5, gap


def test_stops_on_an_error_past_its_retries(sched, tmp_path):
    log = tmp_path / "log"
    run = sched.submit(MODULE, "call", "recur_then_fail", [str(log)])
    with pytest.raises(ValueError, match="broken at 3"):
        run.result(timeout=30)
    # None (recurred), then an error, its one retry, and the same error again: the end.
    assert kinds(sched.inspect(run.id), "recur_then_fail") == ["recurred", "error", "error"]
    assert no_new_lines(log, 3, 0.4)


def test_stops_on_cancel(sched, tmp_path):
    log = tmp_path / "log"
    run = sched.submit(MODULE, "call", "forever_none", [str(log)])
    wait_lines(log, 3)
    cancelled = sched.client().cancel(run.id)
    assert run.id + ":1:1" in cancelled
    with pytest.raises(cf.ExecutionCancelled):
        run.result(timeout=10)
    time.sleep(0.1)  # the abort reaches the worker: an attempt that was starting is killed
    written = len(lines(log))
    attempts = executions(sched.inspect(run.id), "forever_none")
    assert attempts[-1]["result"]["kind"] == "cancelled"
    assert all(e["result"]["kind"] == "recurred" for e in attempts[:-1])
    assert no_new_lines(log, written, 0.6)  # recurrences are 0.2 s apart: none came


def test_a_recurrent_workflow(sched, tmp_path):
    log = tmp_path / "log"
    run_id, value = sched.run(MODULE, "recurring_flow", str(log))
    assert value == "done"
    assert [e["result"]["kind"] for e in sched.inspect(run_id)["steps"][0]["executions"]] == \
        ["recurred", "recurred", "value"]


@pytest.mark.parametrize("value", [0, "", [], False])
def test_only_exactly_none_recurs(sched, tmp_path, value):
    log = tmp_path / "log"
    run_id, result = sched.run(MODULE, "call", "falsy", [str(log), value])
    assert result == value
    assert kinds(sched.inspect(run_id), "falsy") == ["value"] and len(lines(log)) == 1
